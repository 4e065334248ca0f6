package host

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// validate runs libvirt's own schema check on doc.
func validate(t *testing.T, doc string) (bool, string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "doc.xml")
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("virt-xml-validate", f).CombinedOutput()
	return err == nil, string(out)
}

// domainWith is the smallest domain whose disk carries enc, so libvirt's
// domain schema checks the element where Nova puts it.
func domainWith(enc string) string {
	return `<domain type='kvm'><name>kw</name><memory>65536</memory><os><type>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/var/lib/nova/instances/i-1/disk'/>
<target dev='vda' bus='virtio'/>` + enc + `</disk></devices></domain>`
}

// The <secret> and <encryption> XML as Nova writes them, accepted by
// libvirt's schemas; the value only ever leaves through a pipe.
func TestLibvirtSecret(t *testing.T) {
	for _, tool := range []string{"virt-xml-validate", "xmllint"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install --no-install-recommends libvirt-clients libxml2-utils)", tool)
		}
	}
	srv := startServer(t)
	key := randomKey()
	ref := srv.createSecret(t, "proj-a", "symmetric", key)
	cli := newHostCLI(t, srv, "proj-a")
	const id, disk = "6f4b8a52-1c9e-4f1a-9a3d-2b7c0e5d8f11", "/var/lib/nova/instances/i-1/disk"

	r, w, _ := os.Pipe()
	code, out, errOut := cli.run(t, []*os.File{w}, "libvirt-secret", "--ref", ref, "--usage", disk, "--uuid", id, "--value-fd", "3")
	w.Close()
	var value bytes.Buffer
	value.ReadFrom(r)
	r.Close()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := hex.EncodeToString(key); value.String() != want {
		t.Fatalf("value on the pipe %q, want the hex passphrase", value.String())
	}
	secXML, _ := out["secret_xml"].(string)
	encXML, _ := out["encryption_xml"].(string)
	if strings.Contains(secXML+encXML+errOut, value.String()) {
		t.Fatal("the secret's value is in the XML or the diagnostics")
	}

	var sec struct {
		XMLName   xml.Name
		Ephemeral string `xml:"ephemeral,attr"`
		Private   string `xml:"private,attr"`
		UUID      string `xml:"uuid"`
		Usage     struct {
			Type   string `xml:"type,attr"`
			Volume string `xml:"volume"`
		} `xml:"usage"`
	}
	if err := xml.Unmarshal([]byte(secXML), &sec); err != nil || sec.XMLName.Local != "secret" || sec.Ephemeral != "no" ||
		sec.Private != "no" || sec.UUID != id || sec.Usage.Type != "volume" || sec.Usage.Volume != disk {
		t.Fatalf("secret XML %v:\n%s", err, secXML)
	}
	var enc struct {
		XMLName xml.Name
		Format  string `xml:"format,attr"`
		Secret  struct {
			Type string `xml:"type,attr"`
			UUID string `xml:"uuid,attr"`
		} `xml:"secret"`
	}
	if err := xml.Unmarshal([]byte(encXML), &enc); err != nil || enc.XMLName.Local != "encryption" || enc.Format != "luks" ||
		enc.Secret.Type != "passphrase" || enc.Secret.UUID != id {
		t.Fatalf("encryption XML %v:\n%s", err, encXML)
	}
	if ok, msg := validate(t, secXML); !ok {
		t.Fatalf("virt-xml-validate refuses the secret:\n%s\n%s", secXML, msg)
	}
	if ok, msg := validate(t, domainWith(encXML)); !ok {
		t.Fatalf("virt-xml-validate refuses a domain with the encryption element:\n%s\n%s", encXML, msg)
	}

	// --value-fd 1: the value alone on stdout, ready for
	// `virsh secret-set-value UUID --file /dev/stdin --plain`.
	cmd := exec.Command(cli.bin, "--config", cli.config, "libvirt-secret", "--ref", ref, "--usage", disk, "--value-fd", "1")
	var stdout bytes.Buffer
	pr, pw, _ := os.Pipe() // stdout must be a pipe, not a file
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	stdout.ReadFrom(pr)
	if err := cmd.Wait(); err != nil || stdout.String() != value.String() {
		t.Fatalf("--value-fd 1: %v, stdout %q", err, stdout.String())
	}

	// Nova writes the Cinder volume id as the usage; libvirtd takes it, the
	// schema does not, and keywarden-host says so.
	code, out, errOut = cli.run(t, nil, "libvirt-secret", "--ref", ref, "--usage", "c0ffee00-1111-4222-8333-444455556666")
	if code != 0 || !strings.Contains(errOut, "not an absolute path") {
		t.Fatalf("volume id usage: exit %d: %s", code, errOut)
	}
	if ok, _ := validate(t, out["secret_xml"].(string)); ok {
		t.Fatal("libvirt's schema now accepts a volume id as usage: update the warning and docs/HOST.md")
	}
	if code, _, _ := cli.run(t, nil, "libvirt-secret", "--ref", ref); code != 2 {
		t.Fatalf("no --usage: exit %d, want 2", code)
	}
}
