// Package e2e drives a real `keywarden serve` with the real clients
// operators use: the barbican and openstack CLIs from Debian.
package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
)

func need(t *testing.T, cmd string) {
	t.Helper()
	if _, err := exec.LookPath(cmd); err != nil {
		t.Fatalf("%s is not installed: run `make deps` (Debian package python3-barbicanclient / python3-openstackclient)", cmd)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr // the barbican CLI prints a deprecation warning there
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(redact(args), " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// redact keeps tokens out of test logs.
func redact(args []string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if i > 0 && out[i-1] == "--os-token" {
			out[i] = "<token>"
		}
	}
	return out
}

func TestBarbicanCLI(t *testing.T) {
	need(t, "barbican")
	srv := testserver.Start(t, testserver.Options{NoAuth: true})
	base := []string{"--no-auth", "--endpoint", srv.URL, "--os-project-id", "proj-cli"}
	cli := func(args ...string) string {
		return run(t, "barbican", append(append([]string{}, base...), args...)...)
	}

	ref := cli("secret", "store", "--name", "cli-secret", "--payload", "s3cr3t-from-cli",
		"--payload-content-type", "text/plain", "-f", "value", "-c", "Secret href")
	if !strings.HasPrefix(ref, srv.URL+"/v1/secrets/") {
		t.Fatalf("secret href %q does not point at the server", ref)
	}
	if got := cli("secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); got != "s3cr3t-from-cli" {
		t.Fatalf("payload round trip: got %q", got)
	}
	if got := cli("secret", "get", ref, "-f", "value", "-c", "Name"); got != "cli-secret" {
		t.Fatalf("metadata: name %q", got)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(cli("secret", "list", "-f", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["Secret href"] != ref {
		t.Fatalf("list: %v", list)
	}
	// Another project cannot see it.
	other := run(t, "barbican", "--no-auth", "--endpoint", srv.URL, "--os-project-id", "proj-other", "secret", "list", "-f", "json")
	if strings.Contains(other, ref) {
		t.Fatalf("another project lists the secret: %s", other)
	}
	cli("secret", "delete", ref)
	out, err := exec.Command("barbican", append(append([]string{}, base...), "secret", "get", ref)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Not Found: Secret not found.") {
		t.Fatalf("deleted secret still readable: %v %s", err, out)
	}
}

func TestOpenStackCLI(t *testing.T) {
	need(t, "openstack")
	srv := testserver.Start(t, testserver.Options{})
	tok := srv.Token(t, "proj-osc", "osc-user", "admin")
	base := []string{"--os-auth-type", "admin_token", "--os-token", tok, "--os-endpoint", srv.URL + "/v1"}
	osc := func(args ...string) string {
		return run(t, "openstack", append(append([]string{}, base...), args...)...)
	}

	ref := osc("secret", "store", "--name", "osc-secret", "--payload", "from-openstack-cli", "-f", "value", "-c", "Secret href")
	if !strings.Contains(ref, "/v1/secrets/") {
		t.Fatalf("secret href %q", ref)
	}
	if got := osc("secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); got != "from-openstack-cli" {
		t.Fatalf("payload: %q", got)
	}
	if got := osc("secret", "list", "-f", "value", "-c", "Name"); got != "osc-secret" {
		t.Fatalf("list: %q", got)
	}
	osc("secret", "delete", ref)
	if got := osc("secret", "list", "-f", "json"); got != "[]" {
		t.Fatalf("list after delete: %q", got)
	}
	// A forged token is refused.
	out, err := exec.Command("openstack", "--os-auth-type", "admin_token", "--os-token", tok+"x",
		"--os-endpoint", srv.URL+"/v1", "secret", "list").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "401") {
		t.Fatalf("forged token accepted: %v %s", err, out)
	}
}
