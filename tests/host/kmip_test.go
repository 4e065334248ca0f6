package host

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/hostlib/fetch"
)

// kmipAccess issues the host a client certificate from the server's own CA
// (keywarden pki issue-client) for project, with the least role that may
// read key material.
func kmipAccess(t *testing.T, srv *server, project string) fetch.KMIPConfig {
	dir := t.TempDir()
	out, err := exec.Command(srv.bin, "pki", "issue-client", "--data-dir", srv.dataDir, "--project", project,
		"--user", "host-1", "--roles", "observer", "--key-type", "ecdsa", "--out", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("keywarden pki issue-client: %v\n%s", err, out)
	}
	return fetch.KMIPConfig{Addr: srv.kmipAddr, CertFile: filepath.Join(dir, "client.pem"),
		KeyFile: filepath.Join(dir, "client-key.pem"), CAFile: filepath.Join(dir, "ca.pem")}
}

// A secret created over REST is the same object over KMIP: the host gets
// the same bytes by either protocol, and another project's host gets none.
func TestKMIPFetchMatchesREST(t *testing.T) {
	srv := startServerWith(t, true)
	key := make([]byte, 32)
	rand.Read(key)
	symID := lastPart(srv.createSecret(t, "proj-a", "symmetric", key))
	pass := []byte("correct horse battery staple")
	passID := lastPart(srv.createSecret(t, "proj-a", "passphrase", pass))
	cli := kmipCLI(t, kmipAccess(t, srv, "proj-a"))

	for _, c := range []struct {
		id, typ string
		want    []byte
	}{{symID, "symmetric", []byte(fmt.Sprintf("%x", key))}, {passID, "passphrase", pass}} {
		r, w, _ := os.Pipe()
		code, out, errOut := cli.run(t, []*os.File{w}, "fetch", "kmip:"+c.id, "--passphrase-fd", "3")
		w.Close()
		var got bytes.Buffer
		got.ReadFrom(r)
		r.Close()
		if code != 0 || out["type"] != c.typ {
			t.Fatalf("%s over KMIP: exit %d %v %s", c.typ, code, out, errOut)
		}
		if !bytes.Equal(got.Bytes(), c.want) {
			t.Fatalf("%s: KMIP gave a different passphrase than REST would", c.typ)
		}
	}
	if code, _, e := cli.run(t, nil, "fetch", "kmip:6f1c0f38-3f7a-4a5e-9d0e-5a1f2b3c4d5e"); code != 3 {
		t.Fatalf("missing object: exit %d, want 3\n%s", code, e)
	}
	other := kmipCLI(t, kmipAccess(t, srv, "proj-b"))
	if code, _, e := other.run(t, nil, "fetch", "kmip:"+symID); code != 3 && code != 4 {
		t.Fatalf("another project's key over KMIP: exit %d, want 3 or 4\n%s", code, e)
	} else {
		t.Logf("another project's key over KMIP: exit %d: %s", code, strings.TrimSpace(e))
	}
}

func kmipCLI(t *testing.T, k fetch.KMIPConfig) hostCLI {
	bin, err := build(t, "keywarden-host")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "host.json")
	body := fmt.Sprintf(`{"kmip":{"addr":%q,"cert_file":%q,"key_file":%q,"ca_file":%q},"attempts":2}`, k.Addr, k.CertFile, k.KeyFile, k.CAFile)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return hostCLI{bin: bin, config: cfg}
}

func lastPart(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }
