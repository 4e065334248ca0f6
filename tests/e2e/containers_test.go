package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
)

// Containers with the Debian barbican CLI against the real binary:
// generic and rsa containers made from secret hrefs, read back, listed
// with filters, refused when Barbican refuses them, deleted. The CLI has
// no consumer commands; the same package's Python API registers them.
func TestBarbicanCLIContainers(t *testing.T) {
	need(t, "barbican")
	srv := testserver.Start(t, testserver.Options{NoAuth: true})
	base := []string{"--no-auth", "--endpoint", srv.URL, "--os-project-id", "proj-ctr"}
	cli := func(args ...string) string {
		return run(t, "barbican", append(append([]string{}, base...), args...)...)
	}
	store := func(name string) string {
		return cli("secret", "store", "--name", name, "--payload", name+"-material",
			"--payload-content-type", "text/plain", "-f", "value", "-c", "Secret href")
	}
	pub, priv := store("pub"), store("priv")

	generic := cli("secret", "container", "create", "--name", "c", "--type", "generic",
		"--secret", "a="+pub, "-f", "value", "-c", "Container href")
	if !strings.HasPrefix(generic, srv.URL+"/v1/containers/") {
		t.Fatalf("container href %q", generic)
	}
	rsa := cli("secret", "container", "create", "--name", "keys", "--type", "rsa",
		"--secret", "public_key="+pub, "--secret", "private_key="+priv, "-f", "value", "-c", "Container href")

	var got map[string]any
	if err := json.Unmarshal([]byte(cli("secret", "container", "get", generic, "-f", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if got["Name"] != "c" || got["Type"] != "generic" || got["Status"] != "ACTIVE" || got["Secrets"] != "a="+pub ||
		got["Created"] == nil || got["Container href"] != generic {
		t.Fatalf("container get: %v", got)
	}
	// Not -f json: the CLI's rsa view leaves Created a datetime, which its
	// JSON formatter cannot print (with Barbican too).
	if got := cli("secret", "container", "get", rsa, "-f", "value", "-c", "Type", "-c", "Public Key", "-c", "Private Key"); got != "rsa\n"+pub+"\n"+priv {
		t.Fatalf("rsa container get: %q", got)
	}

	var list []map[string]any
	if err := json.Unmarshal([]byte(cli("secret", "container", "list", "-f", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0]["Container href"] != generic || list[1]["Container href"] != rsa {
		t.Fatalf("list: %v", list)
	}
	if got := cli("secret", "container", "list", "--type", "rsa", "-f", "value", "-c", "Name"); got != "keys" {
		t.Fatalf("list --type rsa: %q", got)
	}
	if got := cli("secret", "container", "list", "--limit", "1", "--offset", "1", "-f", "value", "-c", "Name"); got != "keys" {
		t.Fatalf("list --limit 1 --offset 1: %q", got)
	}

	// Refused as Barbican refuses: an rsa container without its private key.
	out, err := exec.Command("barbican", append(append([]string{}, base...), "secret", "container", "create",
		"--type", "rsa", "--secret", "public_key="+pub)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Bad Request") || !strings.Contains(string(out), "'private_key'") {
		t.Fatalf("rsa without a private key: %v\n%s", err, out)
	}
	// Another project sees neither the containers nor their secrets.
	other := run(t, "barbican", "--no-auth", "--endpoint", srv.URL, "--os-project-id", "proj-other",
		"secret", "container", "list", "-f", "json")
	if other != "[]" {
		t.Fatalf("another project lists %s", other)
	}

	// Consumers through python-barbicanclient's API (what Octavia calls).
	script := `
import sys
from keystoneauth1 import session
from barbicanclient import client
c = client.Client(session=session.Session(), endpoint=sys.argv[1], project_id="proj-ctr")
ref = sys.argv[2]
c.containers.register_consumer(ref, "octavia", "https://lb.example/1")
ct = c.containers.register_consumer(ref, "octavia", "https://lb.example/1")
print(len(ct.consumers), ct.consumers[0]["name"], ct.consumers[0]["URL"])
c.containers.remove_consumer(ref, "octavia", "https://lb.example/1")
print(len(c.containers.get(ref).consumers))
`
	py, err := exec.Command("/usr/bin/python3", "-c", script, srv.URL, generic).Output()
	if err != nil {
		t.Fatalf("python-barbicanclient consumers: %v\n%s", err, py)
	}
	if got := strings.TrimSpace(string(py)); got != "1 octavia https://lb.example/1\n0" {
		t.Fatalf("consumers: %q", got)
	}

	cli("secret", "container", "delete", generic)
	out, err = exec.Command("barbican", append(append([]string{}, base...), "secret", "container", "get", generic)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Not Found") {
		t.Fatalf("deleted container still readable: %v %s", err, out)
	}
	if got := cli("secret", "container", "list", "-f", "value", "-c", "Name"); got != "keys" {
		t.Fatalf("list after delete: %q", got)
	}
	// The secrets stay.
	if got := cli("secret", "get", "--payload", pub, "-f", "value", "-c", "Payload"); got != "pub-material" {
		t.Fatalf("secret after its container's delete: %q", got)
	}
}

// Container ACLs with the openstack CLI, whose `acl` commands take a
// secret or a container href: the owner shares a container with a user of
// another project and makes it private. That user reads the container but
// not the secret in it; a fellow project member no longer reads it; the
// share ends with `acl user remove`.
func TestContainerACLWithCLI(t *testing.T) {
	need(t, "openstack")
	srv := testserver.Start(t, testserver.Options{})
	user := func(project, name, roles string) func(args ...string) (string, error) {
		auth := []string{"--os-auth-type", "admin_token", "--os-token", srv.Token(t, project, name, roles), "--os-endpoint", srv.URL + "/v1"}
		return func(args ...string) (string, error) {
			out, err := exec.Command("openstack", append(auth, args...)...).CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
	}
	owner, peer, guest := user("p-own", "olga", "creator"), user("p-own", "pete", "creator"), user("p-guest", "gus", "observer")
	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}
	sec := must(owner("secret", "store", "--name", "inside", "--payload", "not for gus", "-f", "value", "-c", "Secret href"))
	ctr := must(owner("secret", "container", "create", "--name", "shared", "--secret", "k="+sec, "-f", "value", "-c", "Container href"))
	get := []string{"secret", "container", "get", ctr, "-f", "value", "-c", "Name"}
	if out, err := guest(get...); err == nil {
		t.Fatalf("another project read an unshared container: %s", out)
	}
	must(owner("acl", "user", "add", "--user", "gus", "--no-project-access", ctr))
	if out := must(owner("acl", "get", ctr, "-f", "value", "-c", "Users", "-c", "Project Access")); !strings.Contains(out, "gus") || !strings.Contains(out, "False") {
		t.Fatalf("acl get: %s", out)
	}
	if out := must(guest(get...)); out != "shared" {
		t.Fatalf("the ACL user reads %q", out)
	}
	if out, err := guest("secret", "get", "--payload", sec, "-f", "value", "-c", "Payload"); err == nil {
		t.Fatalf("the container's ACL user read its secret: %s", out)
	}
	if out, err := peer(get...); err == nil {
		t.Fatalf("a project member read a private container: %s", out)
	}
	must(owner("acl", "user", "remove", "--user", "gus", ctr))
	if out, err := guest(get...); err == nil {
		t.Fatalf("read after the share ended: %s", out)
	}
	must(owner("acl", "delete", ctr))
	if out := must(peer(get...)); out != "shared" {
		t.Fatalf("the project reads %q after the ACL went", out)
	}
}
