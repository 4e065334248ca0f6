package barbican

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// The real Python clients (Debian's python3-barbicanclient 5.4.0 and the
// openstack CLI), when installed: they negotiate a microversion through
// GET / or GET /v1 and fail on any field they do not know.

func runCLI(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(cmd.Environ(), "HOME="+t.TempDir(), "PYTHONWARNINGS=ignore")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

var cliRefRE = regexp.MustCompile(`https?://[^\s|]+/v1/secrets/[0-9a-f-]{36}`)

func TestBarbicanCLI(t *testing.T) {
	if _, err := exec.LookPath("barbican"); err != nil {
		t.Skip("barbican CLI (python3-barbicanclient) not installed")
	}
	e := newEnv(t)
	base := []string{"--no-auth", "--endpoint", e.url, "--os-project-id", "p1"}
	cli := func(args ...string) string { return runCLI(t, "barbican", append(base, args...)...) }

	out := cli("secret", "store", "--name", "cli-secret", "--payload", "cli payload", "-f", "value", "-c", "Secret href")
	ref := cliRefRE.FindString(out)
	if ref == "" {
		t.Fatalf("no secret ref in %q", out)
	}
	if got := strings.TrimSpace(cli("secret", "get", ref, "--payload", "-f", "value")); got != "cli payload" {
		t.Errorf("payload %q", got)
	}
	if got := cli("secret", "get", ref, "-f", "value", "-c", "Name", "-c", "Status", "-c", "Content types"); !strings.Contains(got, "cli-secret") || !strings.Contains(got, "ACTIVE") {
		t.Errorf("get: %q", got)
	}
	// Two-step: metadata first, then the payload by PUT.
	out = cli("secret", "store", "--name", "later", "-f", "value", "-c", "Secret href")
	later := cliRefRE.FindString(out)
	cli("secret", "update", later, "second step")
	if got := strings.TrimSpace(cli("secret", "get", later, "--payload", "-f", "value")); got != "second step" {
		t.Errorf("two-step payload %q", got)
	}
	if got := cli("secret", "list", "-f", "value", "-c", "Name"); !strings.Contains(got, "cli-secret") || !strings.Contains(got, "later") {
		t.Errorf("list: %q", got)
	}
	// ACLs.
	cli("acl", "submit", "--user", "u2", "--no-project-access", ref)
	if got := cli("acl", "get", ref, "-f", "value"); !strings.Contains(got, "u2") || !strings.Contains(got, "False") {
		t.Errorf("acl get: %q", got)
	}
	cli("acl", "user", "add", "--user", "u3", ref)
	if got := cli("acl", "get", ref, "-f", "value"); !strings.Contains(got, "u3") || !strings.Contains(got, "u2") {
		t.Errorf("acl after user add: %q", got)
	}
	cli("acl", "delete", ref)
	if got := cli("acl", "get", ref, "-f", "value"); !strings.Contains(got, "True") || strings.Contains(got, "u2") {
		t.Errorf("acl after delete: %q", got)
	}

	cli("secret", "delete", ref)
	if got := cli("secret", "list", "-f", "value", "-c", "Name"); strings.Contains(got, "cli-secret") {
		t.Errorf("deleted secret still listed: %q", got)
	}
}

func TestOpenstackCLIWithToken(t *testing.T) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("openstack CLI not installed")
	}
	e := newEnv(t, withAuth())
	tok := mint(t, kms.Identity{Project: "p1", User: "osc", Roles: []string{"creator"}}, time.Hour)
	base := []string{"--os-auth-type", "admin_token", "--os-token", tok, "--os-endpoint", e.url + "/v1"}
	cli := func(args ...string) string { return runCLI(t, "openstack", append(base, args...)...) }

	out := cli("secret", "store", "--name", "osc-secret", "--payload", "osc payload", "-f", "value", "-c", "Secret href")
	ref := cliRefRE.FindString(out)
	if ref == "" {
		t.Fatalf("no secret ref in %q", out)
	}
	if got := strings.TrimSpace(cli("secret", "get", ref, "--payload", "-f", "value")); got != "osc payload" {
		t.Errorf("payload %q", got)
	}
	if got := cli("secret", "list", "-f", "value", "-c", "Name"); !strings.Contains(got, "osc-secret") {
		t.Errorf("list: %q", got)
	}
	cli("secret", "delete", ref)
}
