package fetch

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keywarden/keywarden/hostlib"
)

func TestParseRef(t *testing.T) {
	good := []struct {
		in   string
		want Ref
	}{
		{"https://kms:9311/v1/secrets/0C6A3F0E-6BD5-4C2C-9F41-1DF0A7A1C001", Ref{ProtoREST, "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c001", "https://kms:9311"}},
		{"http://10.0.0.1/key-manager/v1/secrets/0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c001", Ref{ProtoREST, "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c001", "http://10.0.0.1/key-manager"}},
		{"kmip:42", Ref{Proto: ProtoKMIP, ID: "42"}},
		{"0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c001", Ref{ID: "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c001"}},
	}
	for _, g := range good {
		if got, err := ParseRef(g.in); err != nil || got != g.want {
			t.Errorf("%s: %+v %v, want %+v", g.in, got, err, g.want)
		}
	}
	for _, bad := range []string{"", "kmip:", "https://kms/v1/secrets/not-a-uuid", "https://kms/v1/orders/0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c001",
		"https://user:pw@kms/v1/secrets/0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c001", "../etc/passwd", "a b"} {
		if _, err := ParseRef(bad); !errors.Is(err, hostlib.ErrBadRef) {
			t.Errorf("%q accepted", bad)
		}
	}
	if !sameService("https://kms:443/", "https://KMS") || sameService("https://kms", "http://kms") || sameService("https://kms:9311", "https://kms:9312") {
		t.Error("sameService")
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "host.json")
	body := `{"rest":{"endpoint":"https://kms:9311","token_file":"/etc/keywarden/token"},"timeout":"3s","attempts":2}`
	os.WriteFile(path, []byte(body), 0o644)
	if _, err := LoadConfig(path); err == nil {
		t.Fatal("world-readable credentials file accepted")
	}
	os.Chmod(path, 0o600)
	cfg, err := LoadConfig(path)
	if err != nil || time.Duration(cfg.Timeout) != 3*time.Second || cfg.Attempts != 2 || cfg.REST.TokenFile == "" {
		t.Fatalf("%+v %v", cfg, err)
	}
	os.WriteFile(path, []byte(`{"rest":{"endpoint":"https://kms","tokn":"typo"}}`), 0o600)
	if _, err := LoadConfig(path); err == nil {
		t.Fatal("unknown field accepted")
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	r := Retry{Base: 100 * time.Millisecond, Max: time.Second}.withDefaults()
	seen := map[time.Duration]bool{}
	for i := 0; i < 40; i++ {
		d := r.backoff(i % 8)
		if d < 50*time.Millisecond || d > time.Second {
			t.Fatalf("backoff(%d) = %v out of bounds", i%8, d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("backoff barely varies: %d distinct values", len(seen))
	}
}
