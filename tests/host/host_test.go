// Package host runs keywarden-host, as a separate process, against the real
// Keywarden server, cryptsetup and qemu-img: fetch, format, verify, unlock,
// image create and convert, with a scan of every command line for leaks.
package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/hosttest"
	"github.com/keywarden/keywarden/hostlib/luks"
)

// hostCLI runs the keywarden-host binary with a config for one project.
type hostCLI struct {
	bin, config string
}

func newHostCLI(t *testing.T, srv *server, project string) hostCLI {
	bin, err := build(t, "keywarden-host")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "host.json")
	body := fmt.Sprintf(`{"rest":{"endpoint":%q,"project_id":%q},"attempts":2,"timeout":"5s"}`, srv.url, project)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return hostCLI{bin: bin, config: cfg}
}

// run returns the exit code and the parsed JSON result; extra files become
// descriptors 3, 4, ... of the child.
func (h hostCLI) run(t *testing.T, extra []*os.File, args ...string) (int, map[string]any, string) {
	t.Helper()
	cmd := exec.Command(h.bin, append([]string{"--config", h.config}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = &stdout, &stderr, extra
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	json.Unmarshal(stdout.Bytes(), &out)
	return code, out, stderr.String()
}

func (h hostCLI) must(t *testing.T, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := h.run(t, nil, args...)
	if code != 0 {
		t.Fatalf("keywarden-host %v: exit %d\n%s", args, code, errOut)
	}
	return out
}

func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func TestHostAgainstRealServer(t *testing.T) {
	hosttest.Need(t, "cryptsetup")
	srv := startServer(t)
	key := randomKey()
	symRef := srv.createSecret(t, "proj-a", "symmetric", key)
	passphrase := []byte("Tr0ub4dor&3 correct horse")
	passRef := srv.createSecret(t, "proj-a", "passphrase", passphrase)
	cli := newHostCLI(t, srv, "proj-a")
	hexPass := []byte(hex.EncodeToString(key))

	t.Run("fetch", func(t *testing.T) {
		r, w, _ := os.Pipe()
		code, out, errOut := cli.run(t, []*os.File{w}, "fetch", symRef, "--passphrase-fd", "3")
		w.Close()
		var got bytes.Buffer
		got.ReadFrom(r)
		r.Close()
		if code != 0 || out["type"] != "symmetric" {
			t.Fatalf("exit %d %v %s", code, out, errOut)
		}
		if !bytes.Equal(got.Bytes(), hexPass) {
			t.Fatalf("passphrase %q, want the lowercase hex of the key", got.Bytes())
		}
		r, w, _ = os.Pipe()
		cli.run(t, []*os.File{w}, "fetch", passRef, "--passphrase-fd", "3")
		w.Close()
		got.Reset()
		got.ReadFrom(r)
		if !bytes.Equal(got.Bytes(), passphrase) {
			t.Fatalf("passphrase secret %q, want it byte-exact", got.Bytes())
		}
	})

	t.Run("errors", func(t *testing.T) {
		missing := srv.url + "/v1/secrets/6f1c0f38-3f7a-4a5e-9d0e-5a1f2b3c4d5e"
		if code, _, e := cli.run(t, nil, "fetch", missing); code != 3 {
			t.Fatalf("missing secret: exit %d, want 3\n%s", code, e)
		}
		other := newHostCLI(t, srv, "proj-b")
		if code, _, e := other.run(t, nil, "fetch", symRef); code != 4 {
			t.Fatalf("another project's secret: exit %d, want 4 (403)\n%s", code, e)
		}
	})

	t.Run("format-verify-unlock", func(t *testing.T) {
		for _, typ := range []string{"luks1", "luks2"} {
			dev := hosttest.SparseFile(t, 64)
			cli.must(t, "format", dev, "--ref", symRef, "--type", typ)
			if v := cli.must(t, "verify", dev, "--ref", symRef); v["slot"] != 0.0 {
				t.Fatalf("verify %s: %v", typ, v)
			}
			cli.must(t, "open", dev, "--test-passphrase", "--ref", symRef)
			if err := cryptsetup.New("").TestPassphrase(context.Background(), dev, hexPass); err != nil {
				t.Fatalf("cryptsetup itself refuses the derived passphrase: %v", err)
			}
			if _, _, err := luks.VerifyFile(dev, hexPass); err != nil {
				t.Fatalf("go verifier: %v", err)
			}
			if code, _, _ := cli.run(t, nil, "verify", dev, "--ref", passRef); code != 6 {
				t.Fatalf("another secret verified: exit %d, want 6", code)
			}
		}
	})

	t.Run("images", func(t *testing.T) {
		hosttest.Need(t, "qemu-img")
		hosttest.Need(t, "qemu-io")
		dir := t.TempDir()
		src, dst := filepath.Join(dir, "image.qcow2"), filepath.Join(dir, "volume.luks")
		cli.must(t, "image-create", src, "--ref", symRef, "--format", "qcow2", "--size", "64M")
		if err := hosttest.QemuIO(src, "qcow2", hexPass, "write -P 0xab 0 1M"); err != nil {
			t.Fatal(err)
		}
		// A passphrase secret would get the slow default profile, which
		// hostlib/cryptsetup's TestDefaultPBKDF covers.
		out := cli.must(t, "image-convert", src, dst, "--ref", symRef, "--dst-ref", passRef, "--profile", "fast")
		if out["decrypt_size"] != float64(64<<20) {
			t.Fatalf("convert: %v", out)
		}
		if err := hosttest.QemuIO(dst, "luks", passphrase, "read -P 0xab 0 1M"); err != nil {
			t.Fatal(err)
		}
		if err := cryptsetup.New("").TestPassphrase(context.Background(), dst, passphrase); err != nil {
			t.Fatalf("cryptsetup on the converted volume: %v", err)
		}
		cli.must(t, "verify", dst, "--ref", passRef)
	})
}

// No secret may show in any process's command line while keywarden-host
// drives cryptsetup and qemu-img for the real server's secrets.
func TestNoSecretInAnyCmdline(t *testing.T) {
	hosttest.Need(t, "cryptsetup")
	hosttest.Need(t, "qemu-img")
	srv := startServer(t)
	key := randomKey()
	ref := srv.createSecret(t, "proj-a", "symmetric", key)
	cli := newHostCLI(t, srv, "proj-a")
	needles := [][]byte{[]byte(hex.EncodeToString(key)), key}
	scan := startScan(needles)
	dir := t.TempDir()
	cli.must(t, "format", hosttest.SparseFile(t, 20), "--ref", ref, "--type", "luks2")
	cli.must(t, "image-create", filepath.Join(dir, "i.qcow2"), "--ref", ref, "--format", "qcow2", "--size", "16M")
	cli.must(t, "image-convert", filepath.Join(dir, "i.qcow2"), filepath.Join(dir, "v.luks"), "--ref", ref)
	rep := scan.Stop()
	if len(rep.Leaks) > 0 {
		t.Fatalf("secret in a command line: %q", rep.Leaks)
	}
	for _, w := range []string{"cryptsetup", "qemu-img"} {
		if rep.Seen[w] == 0 {
			t.Fatalf("the scan never saw %s run; it proves nothing", w)
		}
	}
	t.Logf("%d scans; saw %v; no secret in any command line", rep.Scans, rep.Seen)
}
