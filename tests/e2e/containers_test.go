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
