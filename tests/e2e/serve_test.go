package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/tests/testserver"
)

func TestBadConfigStopsStartup(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kw.yaml")
	os.WriteFile(cfg, []byte("rest:\n  adress: 127.0.0.1:1\n"), 0o600)
	out, err := testserver.Run(t, "serve", "--config", cfg, "--data-dir", dir)
	if err == nil || !strings.Contains(out, "adress") {
		t.Fatalf("unknown config key not named: %v %s", err, out)
	}
	out, err = testserver.Run(t, "serve", "--no-such-flag")
	if err == nil || !strings.Contains(out, "no-such-flag") {
		t.Fatalf("unknown flag not named: %v %s", err, out)
	}
	os.WriteFile(cfg, []byte("log_level: loud\n"), 0o600)
	out, err = testserver.Run(t, "serve", "--config", cfg, "--data-dir", dir)
	if err == nil || !strings.Contains(out, "log_level") {
		t.Fatalf("bad value not named: %v %s", err, out)
	}
}

func TestRootKeyReadableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	if out, err := testserver.Run(t, "init", "--data-dir", dir); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	os.Chmod(filepath.Join(dir, "root.key"), 0o644)
	out, err := testserver.Run(t, "serve", "--data-dir", dir, "--rest-addr", testserver.FreeAddr(t), "--kmip-addr", "")
	if err == nil || !strings.Contains(out, "root.key") {
		t.Fatalf("world-readable root key accepted: %v %s", err, out)
	}
}

// TestGracefulShutdown: SIGTERM lets in-flight requests finish, then the
// server exits 0 and the store reopens.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, failed := 0, 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				_, err := createSecret(http.DefaultClient, srv.URL, "gs", []byte("payload"))
				mu.Lock()
				if err == nil {
					ok++
				} else {
					failed++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	srv.Stop(t)
	wg.Wait()
	if !strings.Contains(srv.Log(), "stopped") {
		t.Fatalf("no clean stop in log:\n%s", srv.Log())
	}
	srv2 := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
	req, _ := http.NewRequest("GET", srv2.URL+"/v1/secrets?limit=1", nil)
	req.Header.Set("X-Project-Id", "gs")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal(b, &list); err != nil || list.Total != ok {
		t.Fatalf("after restart %d secrets listed, %d creates were acknowledged (%v): %s", list.Total, ok, err, b)
	}
	t.Logf("%d creates succeeded, %d refused after shutdown began", ok, failed)
}

// TestRotateRootKey: stop, rotate, restart: secrets still open and the old
// key file is gone.
func TestRotateRootKey(t *testing.T) {
	dir := t.TempDir()
	srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
	ref, err := createSecret(http.DefaultClient, srv.URL, "rot", []byte("before rotation"))
	if err != nil {
		t.Fatal(err)
	}
	// While the server runs it holds the audit trail: the rotation, which
	// must be audited first, is refused and changes nothing.
	before, _ := os.ReadFile(filepath.Join(dir, "root.key"))
	if out, err := testserver.Run(t, "rotate-root-key", "--data-dir", dir); err == nil || !strings.Contains(out, "audit trail") {
		t.Fatalf("rotation beside a running server: %v %s", err, out)
	}
	srv.Stop(t)
	oldKey, _ := os.ReadFile(filepath.Join(dir, "root.key"))
	if string(oldKey) != string(before) {
		t.Fatal("a refused rotation replaced the root key")
	}
	out, err := testserver.Run(t, "rotate-root-key", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "re-wrapped 1 project keys") {
		t.Fatalf("rotate: %v %s", err, out)
	}
	newKey, _ := os.ReadFile(filepath.Join(dir, "root.key"))
	if len(newKey) != 32 || string(newKey) == string(oldKey) {
		t.Fatal("root key file not replaced")
	}
	if trail, _ := os.ReadFile(filepath.Join(dir, "audit.log")); !strings.Contains(string(trail), `"action":"root_key_rotate"`) {
		t.Fatal("the rotation is not on the audit trail")
	}
	srv2 := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
	ref = srv2.URL + ref[strings.Index(ref, "/v1/"):]
	if got := getPayload(t, srv2.URL, ref, "rot"); string(got) != "before rotation" {
		t.Fatalf("payload after rotation: %q", got)
	}
}
