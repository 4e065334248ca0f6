package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
)

// ACLs with the openstack CLI: the owner shares a secret with a user of
// another project and makes it private; that user reads it, a fellow
// project member no longer can, and removing the user ends the share.
func TestACLWithCLI(t *testing.T) {
	need(t, "openstack")
	srv := testserver.Start(t, testserver.Options{})
	as := func(project, user, roles string) func(args ...string) (string, error) {
		tok := srv.Token(t, project, user, roles)
		return func(args ...string) (string, error) {
			out, err := exec.Command("openstack", append([]string{"--os-auth-type", "admin_token", "--os-token", tok,
				"--os-endpoint", srv.URL + "/v1"}, args...)...).CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
	}
	owner, peer, guest := as("p-own", "olga", "creator"), as("p-own", "pete", "creator"), as("p-guest", "gus", "observer")
	ref, err := owner("secret", "store", "--name", "shared", "--payload", "for gus", "-f", "value", "-c", "Secret href")
	if err != nil {
		t.Fatalf("store: %v\n%s", err, ref)
	}
	if out, err := guest("secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); err == nil {
		t.Fatalf("another project read an unshared secret: %s", out)
	}
	if out, err := owner("acl", "user", "add", "--user", "gus", "--no-project-access", ref); err != nil {
		t.Fatalf("acl user add: %v\n%s", err, out)
	}
	if out, err := owner("acl", "get", ref, "-f", "value", "-c", "Users", "-c", "Project Access"); err != nil ||
		!strings.Contains(out, "gus") || !strings.Contains(out, "False") {
		t.Fatalf("acl get: %v\n%s", err, out)
	}
	if out, err := guest("secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); err != nil || out != "for gus" {
		t.Fatalf("the ACL user cannot read: %v\n%s", err, out)
	}
	if out, err := peer("secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); err == nil {
		t.Fatalf("a project member read a private secret: %s", out)
	}
	if out, err := owner("acl", "user", "remove", "--user", "gus", ref); err != nil {
		t.Fatalf("acl user remove: %v\n%s", err, out)
	}
	if out, err := guest("secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); err == nil {
		t.Fatalf("read after the share ended: %s", out)
	}
}
