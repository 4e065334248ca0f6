package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/hosttest"
)

// kms stands in for the Keywarden REST API (Barbican v1 shapes) so the CLI
// can be driven end to end here; tests/host runs the same commands against
// the real server.
type kms struct {
	srv     *httptest.Server
	secrets map[string][2]string // id → {secret_type, payload}
	config  string
}

const (
	idSym    = "11111111-2222-4333-8444-000000000001"
	idPass   = "11111111-2222-4333-8444-000000000002"
	idLegacy = "11111111-2222-4333-8444-000000000003"
	idCert   = "11111111-2222-4333-8444-000000000004"
	idDenied = "11111111-2222-4333-8444-000000000005"
	idOther  = "11111111-2222-4333-8444-000000000006"
	idNone   = "11111111-2222-4333-8444-0000000000ff"
)

func newKMS(t *testing.T) *kms {
	key := func(low bool) string {
		k := make([]byte, 32)
		rand.Read(k)
		if low {
			k[0], k[9] = 0x03, 0x00
		}
		return string(k)
	}
	k := &kms{secrets: map[string][2]string{
		idSym:    {"symmetric", key(false)},
		idPass:   {"passphrase", "a passphrase\n"},
		idLegacy: {"symmetric", key(true)},
		idCert:   {"certificate", "-----BEGIN CERTIFICATE-----"},
		idOther:  {"symmetric", key(true)},
	}}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") != "host-token" {
			http.Error(w, `{"code":401,"title":"Unauthorized","description":"bad token"}`, http.StatusUnauthorized)
			return
		}
		id, sub, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/secrets/"), "/")
		s, ok := k.secrets[id]
		switch {
		case id == idDenied:
			http.Error(w, `{"code":403,"title":"Forbidden","description":"not yours"}`, http.StatusForbidden)
		case !ok:
			http.Error(w, `{"code":404,"title":"Not Found","description":"Secret not found."}`, 404)
		case sub == "":
			ct := "application/octet-stream"
			if s[0] == "passphrase" {
				ct = "text/plain"
			}
			json.NewEncoder(w).Encode(map[string]any{"secret_type": s[0], "content_types": map[string]string{"default": ct}})
		default:
			w.Write([]byte(s[1]))
		}
	}))
	t.Cleanup(k.srv.Close)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("host-token\n"), 0o600)
	k.config = filepath.Join(dir, "host.json")
	cfg := fmt.Sprintf(`{"rest":{"endpoint":%q,"token_file":%q},"attempts":2,"timeout":"2s","backoff":"10ms"}`, k.srv.URL, tok)
	os.WriteFile(k.config, []byte(cfg), 0o600)
	return k
}

func (k *kms) ref(id string) string { return k.srv.URL + "/v1/secrets/" + id }

// cli runs keywarden-host in-process with the test key manager's config.
func (k *kms) cli(t *testing.T, args ...string) (int, map[string]any, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"--config", k.config}, args...), &stdout, &stderr)
	var out map[string]any
	json.Unmarshal(stdout.Bytes(), &out)
	return code, out, stderr.String()
}

func (k *kms) must(t *testing.T, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := k.cli(t, args...)
	if code != 0 {
		t.Fatalf("keywarden-host %v: exit %d: %s", args, code, errOut)
	}
	return out
}

func (k *kms) expect(t *testing.T, want int, args ...string) {
	t.Helper()
	if code, _, errOut := k.cli(t, args...); code != want {
		t.Fatalf("keywarden-host %v: exit %d, want %d: %s", args, code, want, errOut)
	}
}

func TestProbeCommand(t *testing.T) {
	hosttest.Need(t, "cryptsetup")
	k := newKMS(t)
	out := k.must(t, "probe")
	if out["encryption_supported"] != true {
		t.Fatalf("probe: %v", out)
	}
}

func TestFetchCommand(t *testing.T) {
	k := newKMS(t)
	r, w, _ := os.Pipe()
	defer r.Close()
	out := k.must(t, "fetch", k.ref(idSym), "--passphrase-fd", fmt.Sprint(w.Fd()))
	w.Close()
	var got bytes.Buffer
	got.ReadFrom(r)
	want := crypto.HexPassphrase([]byte(k.secrets[idSym][1]))
	if got.String() != string(want) {
		t.Fatalf("passphrase on the pipe = %q, want %q", got.String(), want)
	}
	if out["type"] != "symmetric" || out["length"] != 32.0 {
		t.Fatalf("metadata %v", out)
	}
	raw, _ := json.Marshal(out)
	if bytes.Contains(raw, want) || bytes.Contains(raw, []byte(k.secrets[idSym][1])) {
		t.Fatal("fetch printed the material")
	}
	file, _ := os.Create(filepath.Join(t.TempDir(), "leak"))
	defer file.Close()
	k.expect(t, exitUsage, "fetch", idSym, "--passphrase-fd", fmt.Sprint(file.Fd()))
	if st, _ := file.Stat(); st.Size() != 0 {
		t.Fatal("secret written to a regular file")
	}
}

func TestFetchErrorsExitCodes(t *testing.T) {
	k := newKMS(t)
	k.expect(t, exitNotFound, "fetch", idNone)
	k.expect(t, exitDenied, "fetch", idDenied)
	k.expect(t, exitWrongType, "fetch", idCert)
	k.expect(t, exitUsage, "fetch", "https://elsewhere.example/v1/secrets/"+idSym)
	k.expect(t, exitUsage, "fetch")
	k.expect(t, exitUsage, "fetch", idSym, "--no-such-flag")
	k.expect(t, exitUsage, "--config", filepath.Join(t.TempDir(), "missing.json"), "fetch", idSym)
	k.srv.Close()
	k.expect(t, exitUnavailable, "fetch", idSym)
}

func TestFormatVerifyOpenCommands(t *testing.T) {
	hosttest.Need(t, "cryptsetup")
	k := newKMS(t)
	dev := hosttest.SparseFile(t, 20)
	out := k.must(t, "format", dev, "--ref", k.ref(idSym), "--type", "luks2")
	if out["profile"] != "fast" {
		t.Fatalf("symmetric secret should get the fast profile: %v", out)
	}
	v := k.must(t, "verify", dev, "--ref", k.ref(idSym))
	if v["luks_version"] != 2.0 || v["slot"] != 0.0 || v["legacy"] != false {
		t.Fatalf("verify: %v", v)
	}
	k.must(t, "open", dev, "--test-passphrase", "--ref", idSym)
	k.expect(t, exitWrongPass, "verify", dev, "--ref", idOther)
	k.expect(t, exitWrongPass, "open", dev, "--test-passphrase", "--ref", idOther)
	k.expect(t, exitNotLUKS, "verify", hosttest.SparseFile(t, 1), "--ref", idSym)
	k.expect(t, exitNotLUKS, "verify", "/nonexistent/disk", "--ref", idSym)
	k.expect(t, exitUsage, "open", dev, "--ref", idSym) // no NAME, no --test-passphrase
	if ok, _ := hosttest.DeviceMapper(); !ok {
		k.expect(t, exitUnsupported, "open", dev, "kw-cli-test", "--ref", idSym)
		k.expect(t, exitUnsupported, "close", "kw-cli-test")
	}
}

func TestLegacyVolumeIsRekeyedByOpen(t *testing.T) {
	hosttest.Need(t, "cryptsetup")
	k := newKMS(t)
	dev := hosttest.SparseFile(t, 8)
	legacy := crypto.LegacyHexPassphrase([]byte(k.secrets[idLegacy][1]))
	if err := cryptsetup.New("").Format(context.Background(), dev, legacy, cryptsetup.FormatOptions{PBKDF: cryptsetup.FastPBKDF}); err != nil {
		t.Fatal(err)
	}
	if v := k.must(t, "verify", dev, "--ref", idLegacy); v["legacy"] != true {
		t.Fatalf("verify should report the legacy match: %v", v)
	}
	if o := k.must(t, "open", dev, "--test-passphrase", "--ref", idLegacy); o["legacy"] != true || o["rekeyed"] != true {
		t.Fatalf("open: %v", o)
	}
	if v := k.must(t, "verify", dev, "--ref", idLegacy); v["legacy"] != false {
		t.Fatalf("after re-key: %v", v)
	}
}

func TestImageCommands(t *testing.T) {
	hosttest.Need(t, "qemu-img")
	hosttest.Need(t, "cryptsetup")
	k := newKMS(t)
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "img.qcow2"), filepath.Join(dir, "vol.luks")
	if out := k.must(t, "image-create", src, "--ref", idSym, "--format", "qcow2", "--size", "16M"); out["created_by"] != "qemu-img" {
		t.Fatalf("image-create: %v", out)
	}
	pass := crypto.HexPassphrase([]byte(k.secrets[idSym][1]))
	if err := hosttest.QemuIO(src, "qcow2", pass, "write -P 0xab 0 1M"); err != nil {
		t.Fatal(err)
	}
	if info := k.must(t, "image-info", src); info["os_decrypt_size"] != float64(16<<20) {
		t.Fatalf("image-info: %v", info)
	}
	code, out, errOut := k.cli(t, "image-convert", src, dst, "--ref", idSym, "--dst-ref", idOther, "--progress")
	if code != 0 || out["decrypt_size"] != float64(16<<20) || !strings.Contains(errOut, "progress 100.00%") {
		t.Fatalf("image-convert: exit %d %v %s", code, out, errOut)
	}
	other := crypto.HexPassphrase([]byte(k.secrets[idOther][1]))
	if err := hosttest.QemuIO(dst, "luks", other, "read -P 0xab 0 1M"); err != nil {
		t.Fatal(err)
	}
	k.must(t, "verify", dst, "--ref", idOther)
	k.expect(t, exitUsage, "image-create", filepath.Join(dir, "x"), "--ref", idSym, "--size", "lots")
	k.expect(t, exitNotLUKS, "image-info", filepath.Join(dir, "missing.qcow2"))
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "64k": 64 << 10, "16M": 16 << 20, "1G": 1 << 30, "2T": 2 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0", "-1", "1.5G", "G", "9999999999T"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFlagsOverrideConfigFile(t *testing.T) {
	k := newKMS(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("host-token"), 0o600)
	dead := filepath.Join(dir, "dead.json")
	os.WriteFile(dead, []byte(`{"rest":{"endpoint":"http://127.0.0.1:1","token_file":"/nonexistent"},"attempts":1}`), 0o600)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--config", dead, "--endpoint", k.srv.URL, "--token-file", tok, "fetch", idSym}, &stdout, &stderr); code != 0 {
		t.Fatalf("flags did not override the file: exit %d %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"--config", dead, "--kmip-addr", "127.0.0.1:1", "--kmip-cert", "/nonexistent.crt", "--kmip-key", "/nonexistent.key", "fetch", "kmip:1"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("unreadable KMIP certificate: exit %d, want %d (%s)", code, exitUsage, stderr.String())
	}
	os.Chmod(dead, 0o644)
	if code := run(context.Background(), []string{"--config", dead, "fetch", idSym}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("world-readable config: exit %d, want %d", code, exitUsage)
	}
}
