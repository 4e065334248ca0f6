package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
)

// Quotas from the config bound every project; a service admin raises one
// project's over the REST API; the Debian barbican CLI sees Barbican's 403.
func TestQuotasWithCLI(t *testing.T) {
	need(t, "barbican")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keywarden.yaml")
	if err := os.WriteFile(cfg, []byte("quotas:\n  secrets: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir, Args: []string{"--config", cfg}})
	store := func(project string) (string, error) {
		out, err := exec.Command("barbican", "--no-auth", "--endpoint", srv.URL, "--os-project-id", project,
			"secret", "store", "--payload", "p", "--payload-content-type", "text/plain", "-f", "value", "-c", "Secret href").CombinedOutput()
		return string(out), err
	}
	for i := range 2 {
		if out, err := store("proj-q"); err != nil {
			t.Fatalf("create %d: %v\n%s", i, err, out)
		}
	}
	out, err := store("proj-q")
	if err == nil || !strings.Contains(out, "Quota reached") {
		t.Fatalf("a third secret over a quota of 2: %v\n%s", err, out)
	}

	req, _ := http.NewRequest("PUT", srv.URL+"/v1/project-quotas/proj-q",
		strings.NewReader(`{"project_quotas":{"secrets":3}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Project-Id", "ops")
	req.Header.Set("X-Roles", "key-manager:service-admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT project-quotas: %v %v", err, resp)
	}
	resp.Body.Close()
	if out, err := store("proj-q"); err != nil {
		t.Fatalf("after raising the quota: %v\n%s", err, out)
	}
	if out, err := store("proj-q"); err == nil {
		t.Fatalf("a fourth secret over a quota of 3:\n%s", out)
	}
	if out, err := store("proj-other"); err != nil { // the default still allows 2 elsewhere
		t.Fatalf("another project: %v\n%s", err, out)
	}
}
