package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
	"github.com/keywarden/keywarden/tests/vaulttest"
)

// A deployment moves its master key from the local root key to a Vault
// Transit key: secrets stored before read back after the migration, new
// projects get KEKs wrapped by Vault, a half-migrated store and an
// unreachable Vault both stop start-up with a clear message, and a key
// rotated inside Vault needs nothing from Keywarden.
func TestTransitMasterKey(t *testing.T) {
	v := vaulttest.Start(t, false)
	key := v.NewKey(t, "aes256-gcm96")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(v.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "transit.yaml")
	writeCfg := func(addr string) {
		body := fmt.Sprintf("master_key:\n  type: transit\n  transit:\n    address: %s\n    token_file: %s\n    key: %s\n    timeout: 3s\n", addr, tokenFile, key)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(v.Addr)

	// Before: the local root key.
	srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
	before := storeText(t, srv.URL, "p-old", "stored under the root key")
	srv.Stop(t)

	// Configured for Transit but not migrated: refused, naming the way out.
	out, err := testserver.Run(t, "serve", "--data-dir", dir, "--config", cfg, "--rest-addr", testserver.FreeAddr(t), "--kmip-addr", "")
	if err == nil || !strings.Contains(out, "migrate-master-key") {
		t.Fatalf("serve with unmigrated project keys: %v\n%s", err, out)
	}
	out, err = testserver.Run(t, "migrate-master-key", "--data-dir", dir, "--config", cfg)
	if err != nil || !strings.Contains(out, "re-wrapped 1 project keys") || !strings.Contains(out, "transit:transit/"+key) {
		t.Fatalf("migrate-master-key: %v\n%s", err, out)
	}
	if out, err := testserver.Run(t, "migrate-master-key", "--data-dir", dir, "--config", cfg); err != nil {
		t.Fatalf("a second migration must be a no-op: %v\n%s", err, out)
	}
	if out, err := testserver.Run(t, "rotate-root-key", "--data-dir", dir, "--config", cfg); err == nil || !strings.Contains(out, "rotate it in Vault") {
		t.Fatalf("rotate-root-key with a Transit master: %v\n%s", err, out)
	}

	srv = testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir, Args: []string{"--config", cfg}})
	if !strings.Contains(srv.Log(), "master_key=transit:transit/"+key) {
		t.Fatalf("start-up line does not name the master key:\n%s", srv.Log())
	}
	if got := readText(t, srv.URL, "p-old", before); got != "stored under the root key" {
		t.Fatalf("after migration: %q", got)
	}
	after := storeText(t, srv.URL, "p-new", "stored under transit")
	// Rotating the key inside Vault: new KEKs use v2, old ones still open.
	if _, err := v.Admin.Logical().Write("transit/keys/"+key+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	newer := storeText(t, srv.URL, "p-newer", "after the rotation")
	srv.Stop(t)

	srv = testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir, Args: []string{"--config", cfg}})
	for project, want := range map[string][2]string{
		"p-old": {before, "stored under the root key"}, "p-new": {after, "stored under transit"},
		"p-newer": {newer, "after the rotation"},
	} {
		if got := readText(t, srv.URL, project, want[0]); got != want[1] {
			t.Fatalf("%s after restart: %q", project, got)
		}
	}
	srv.Stop(t)

	// Vault unreachable: start-up stops, naming the key and the address.
	writeCfg("http://" + testserver.FreeAddr(t))
	out, err = testserver.Run(t, "serve", "--data-dir", dir, "--config", cfg, "--rest-addr", testserver.FreeAddr(t), "--kmip-addr", "")
	if err == nil || !strings.Contains(out, "transit:transit/"+key) {
		t.Fatalf("serve with Vault down: %v\n%s", err, out)
	}
	if strings.Contains(out, v.Token) {
		t.Fatal("the Vault token appears in the error")
	}
}

func storeText(t *testing.T, base, project, payload string) string {
	t.Helper()
	ref, err := createSecret(http.DefaultClient, base, project, []byte(payload))
	if err != nil {
		t.Fatalf("store in %s: %v", project, err)
	}
	return ref
}

func readText(t *testing.T, base, project, ref string) string {
	t.Helper()
	return string(getPayload(t, base, base+ref[strings.Index(ref, "/v1/"):], project)) // refs name the server that made them
}
