package host

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/hostlib/hosttest"
	"github.com/keywarden/keywarden/hostlib/luks"
)

// orderDiskKey orders a volume's key with the server's disk record, as a
// volume service does, and returns the secret's ref.
func (s *server) orderDiskKey(t *testing.T, project string, enc map[string]any) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"type": "key", "meta": map[string]any{
		"algorithm": "aes", "bit_length": 256, "mode": "xts", "payload_content_type": "application/octet-stream",
		"consumer":   map[string]string{"service": "cinder", "resource_type": "volume", "resource_id": "vol-host"},
		"encryption": enc,
	}})
	get := func(method, url string, body []byte) map[string]any {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Project-Id", project)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: HTTP %d %v", method, url, resp.StatusCode, out)
		}
		return out
	}
	o := get("POST", s.url+"/v1/orders", body)
	ref, _ := get("GET", o["order_ref"].(string), nil)["secret_ref"].(string)
	if ref == "" {
		t.Fatal("order has no secret")
	}
	return ref
}

// attach takes the format from the real server's lifecycle record. Here,
// without device-mapper, it formats on first use and then stops at the
// open with exit 10; tests/hostvm runs the whole attach in a real kernel.
func TestAttachUsesServerRecord(t *testing.T) {
	hosttest.Need(t, "cryptsetup")
	if ok, _ := hosttest.DeviceMapper(); ok {
		t.Skip("device-mapper works here: attach would map for real (tests/hostvm covers it)")
	}
	srv := startServer(t)
	cli := newHostCLI(t, srv, "proj-a")
	ref := srv.orderDiskKey(t, "proj-a", map[string]any{"format": "luks2", "cipher": "aes-xts-plain64"})
	dev := hosttest.SparseFile(t, 32)
	code, _, errOut := cli.run(t, nil, "attach", dev, "--ref", ref)
	if code != 10 || !strings.Contains(errOut, "device-mapper") {
		t.Fatalf("attach without device-mapper: exit %d, want 10: %s", code, errOut)
	}
	f, _ := os.Open(dev)
	h, err := luks.Read(f)
	f.Close()
	if err != nil || h.Version != 2 || h.KeyBytes != 32 || h.Cipher != "aes-xts-plain64" {
		t.Fatalf("not formatted as recorded (luks2, aes-xts-plain64, 256-bit key): %+v %v", h, err)
	}

	// No record (a plain Barbican secret): the defaults, with a warning.
	plain := srv.createSecret(t, "proj-a", "symmetric", randomKey())
	dev = hosttest.SparseFile(t, 32)
	code, _, errOut = cli.run(t, nil, "attach", dev, "--ref", plain)
	if code != 10 || !strings.Contains(errOut, "keeps no disk record") {
		t.Fatalf("attach without a record: exit %d: %s", code, errOut)
	}
	f, _ = os.Open(dev)
	h, err = luks.Read(f)
	f.Close()
	if err != nil || h.Version != 1 {
		t.Fatalf("default format should be LUKS1: %+v %v", h, err)
	}

	for _, c := range []struct {
		want int
		args []string
	}{
		{2, []string{"attach", "--ref", ref}},                             // no device, no --link
		{2, []string{"attach", dev, "--ref", ref, "--type", "bitlocker"}}, // unknown format
		{3, []string{"attach", dev, "--ref", strings.TrimSuffix(ref, ref[len(ref)-4:]) + "0000"}},
		{2, []string{"detach"}},
		{2, []string{"detach", "crypt-x", "--link", "/dev/x"}},
		{10, []string{"detach", "crypt-x"}},
	} {
		if code, _, errOut := cli.run(t, nil, c.args...); code != c.want {
			t.Errorf("%v: exit %d, want %d: %s", c.args, code, c.want, errOut)
		}
	}
}
