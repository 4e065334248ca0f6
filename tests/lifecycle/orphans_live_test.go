package lifecycle

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/tests/testserver"
)

// `secret orphans` while the server holds the embedded store: the CLI asks
// the server (GET / DELETE /v1/orphans) with a service-admin token it mints
// from the data dir, and a tenant's token is refused.
func TestOrphansCLIWhileServing(t *testing.T) {
	dir := t.TempDir()
	cfg := lowOrphanFloor(t, dir)
	srv := testserver.Start(t, testserver.Options{DataDir: dir, Args: []string{"--config", cfg}})
	c := client{t: t, base: srv.URL, hdr: []string{"X-Auth-Token", srv.Token(t, "p1", "u1", "admin")}}
	orphan := c.order("key", map[string]any{"bit_length": 256, "algorithm": "aes", "deletion_policy": "on_last_consumer"})
	used := c.order("passphrase", map[string]any{"consumer": consumer("cloudstack", "volume", "v"), "deletion_policy": "on_last_consumer"})

	run := func(args ...string) (string, error) {
		return testserver.Run(t, append([]string{"secret", "orphans", "--data-dir", dir, "--rest-addr", srv.RESTAddr, "--grace", "1ns"}, args...)...)
	}
	out, err := run()
	if err != nil || !strings.Contains(out, "asking it at") || !strings.Contains(out, idOf(orphan)) || strings.Contains(out, idOf(used)) {
		t.Fatalf("listing through the server: %v\n%s", err, out)
	}
	out, err = run("--url", srv.URL, "--token", srv.Token(t, "p1", "u1", "admin"), "--collect", "--dry-run=false")
	if err == nil || !strings.Contains(out, "403") {
		t.Fatalf("a project admin collected orphans: %v\n%s", err, out)
	}
	c.must(http.StatusOK, "GET", orphan, nil)

	out, err = run("--collect", "--dry-run=false", "--json")
	var rows []map[string]any
	if err != nil || json.Unmarshal([]byte(out[strings.Index(out, "["):]), &rows) != nil || len(rows) != 1 || rows[0]["destroyed"] != true {
		t.Fatalf("collect through the server: %v\n%s", err, out)
	}
	c.must(http.StatusNotFound, "GET", orphan, nil)
	c.must(http.StatusOK, "GET", used, nil)
}

// With orphans.collect_every the server collects by itself.
func TestOrphansCollectedOnSchedule(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keywarden.yaml")
	if err := os.WriteFile(cfg, []byte("orphans:\n  collect_every: 100ms\n  grace: 1ns\n  min_age: 1ns\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir, Args: []string{"--config", cfg}})
	c := client{t: t, base: srv.URL, project: "p1"}
	used := c.order("passphrase", map[string]any{"consumer": consumer("compute", "instance-disk", "i/disk"), "deletion_policy": "on_last_consumer"})
	orphan := c.order("key", map[string]any{"bit_length": 256, "algorithm": "aes", "deletion_policy": "on_last_consumer"})
	deadline := time.Now().Add(10 * time.Second)
	for c.do("GET", orphan, nil).status != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatalf("the orphan was never collected:\n%s", srv.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.must(http.StatusOK, "GET", used, nil)
	if !strings.Contains(srv.Log(), "orphans: collected") {
		t.Fatalf("collection not logged:\n%s", srv.Log())
	}
}

// lowOrphanFloor writes a config that lets the tests count a secret idle
// for no time at all as an orphan (orphans.min_age is 1 h by default).
func lowOrphanFloor(t *testing.T, dir string) string {
	t.Helper()
	cfg := filepath.Join(dir, "keywarden.yaml")
	if err := os.WriteFile(cfg, []byte("orphans:\n  min_age: 1ns\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}
