package guest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/hosttest"
	"github.com/keywarden/keywarden/hostlib/luks"
)

const mib = 1 << 20

// Exit codes documented in docs/HOST.md.
const (
	exitWrongPass = 6
	exitNotOpen   = 7
	exitBusy      = 8
)

// connector makes the symlink a connector would hand os-brick
// (connection_info device_path) for dev.
func connector(t *testing.T, volume, dev string) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "by-volume")
	os.MkdirAll(dir, 0o755)
	link := filepath.Join(dir, volume)
	os.Remove(link)
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed ^ byte(i*7) ^ byte(i>>9)
	}
	return b
}

// writeAt writes data through a block device; the device must exist as
// one, or os.WriteFile would quietly create a regular file in /dev.
func writeAt(t *testing.T, dev string, off int64, data []byte) {
	t.Helper()
	mustBlock(t, dev)
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func readAt(t *testing.T, dev string, off int64, n int) []byte {
	t.Helper()
	mustBlock(t, dev)
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustBlock(t *testing.T, dev string) {
	t.Helper()
	if st, err := os.Stat(dev); err != nil || st.Mode()&os.ModeDevice == 0 {
		t.Fatalf("%s is not a block device: %v", dev, err)
	}
}

func gone(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Lstat("/dev/mapper/" + name); err == nil {
		t.Fatalf("/dev/mapper/%s is still there", name)
	}
}

// rawContains reports whether the backing device holds plaintext.
func rawContains(t *testing.T, dev string, data []byte) bool {
	raw, err := os.ReadFile(dev)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(raw, data)
}

func header(t *testing.T, dev string) *luks.Header {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := luks.Read(f)
	if err != nil {
		t.Fatalf("%s: %v", dev, err)
	}
	return h
}

// Two fresh volumes (LUKS1 under a symmetric key, LUKS2 under a passphrase
// secret) attached at once: formatted on first use with the recorded type,
// cipher and key size, links re-pointed, data written through the mappings,
// detached, attached again (no format) and read back.
func TestAttachTwoDisksFormatOnFirstUse(t *testing.T) {
	vols := []struct {
		id, volume, typ string
		enc             map[string]any
		version, keyLen int
	}{
		{"d0", "vol-luks1", "key", map[string]any{"format": "luks"}, 1, 32},
		{"d1", "vol-luks2", "passphrase", map[string]any{"format": "luks2", "cipher": "aes-xts-plain64", "key_size": 512}, 2, 64},
	}
	refs, links, data := map[string]string{}, map[string]string{}, map[string][]byte{}
	var passes [][]byte
	for _, v := range vols {
		refs[v.id] = order(t, v.typ, v.volume, v.enc)
		p := payload(t, refs[v.id])
		if v.typ == "key" {
			p = crypto.HexPassphrase(p)
		}
		passes = append(passes, p)
	}
	// No passphrase may show in any command line while the host formats
	// and opens (the scanner spins on a CPU, so only for the first attaches).
	scan := hosttest.StartScan(passes, "cryptsetup", "keywarden-host")
	for i, v := range vols {
		dev := disk(t, v.id)
		links[v.id] = connector(t, v.volume, dev)
		out := must(t, "attach", "--link", links[v.id], "--ref", refs[v.id], "--profile", "fast")
		if out["formatted"] != true || out["record"] != "key manager" || out["mapped"] != "/dev/mapper/crypt-"+v.volume {
			t.Fatalf("first attach of %s: %v", v.volume, out)
		}
		if target, _ := os.Readlink(links[v.id]); target != "/dev/mapper/crypt-"+v.volume {
			t.Fatalf("link %s → %q", links[v.id], target)
		}
		h := header(t, dev)
		if h.Version != v.version || h.KeyBytes != v.keyLen || h.Cipher != "aes-xts-plain64" {
			t.Fatalf("%s header: version %d, %d key bytes, %s; record %v", v.volume, h.Version, h.KeyBytes, h.Cipher, v.enc)
		}
		data[v.id] = pattern(byte(0x40+i), mib)
		writeAt(t, links[v.id], 0, data[v.id])
		writeAt(t, links[v.id], 40*mib, data[v.id])
	}
	if rep := scan.Stop(); len(rep.Leaks) > 0 || rep.Seen["cryptsetup"] == 0 {
		t.Errorf("command-line scan: leaks %q, cryptsetup seen %d times", rep.Leaks, rep.Seen["cryptsetup"])
	}
	for _, v := range vols { // both mapped at once, each with its own data
		if !bytes.Equal(readAt(t, "/dev/mapper/crypt-"+v.volume, 40*mib, mib), data[v.id]) {
			t.Fatalf("%s: read back differs while both are attached", v.volume)
		}
	}
	for _, v := range vols {
		must(t, "detach", "--link", links[v.id])
		gone(t, "crypt-"+v.volume)
		if rawContains(t, disk(t, v.id), data[v.id][:4096]) {
			t.Fatalf("%s: plaintext on the backing disk", v.volume)
		}
		connector(t, v.volume, disk(t, v.id)) // the connector's link, as after a fresh connect
		out := must(t, "attach", "--link", links[v.id], "--ref", refs[v.id])
		if out["formatted"] != false {
			t.Fatalf("second attach formatted again: %v", out)
		}
		for _, off := range []int64{0, 40 * mib} {
			if !bytes.Equal(readAt(t, links[v.id], off, mib), data[v.id]) {
				t.Fatalf("%s: data at %d did not survive detach and attach", v.volume, off)
			}
		}
		must(t, "detach", "crypt-"+v.volume)
		must(t, "detach", "crypt-"+v.volume) // idempotent, as os-brick needs
	}
}

// A plain dm-crypt volume: no header to format, the recorded cipher and key
// size, the same data after reopening, only ciphertext on the disk.
func TestAttachPlain(t *testing.T) {
	dev := disk(t, "d2")
	ref := order(t, "key", "vol-plain", map[string]any{"format": "plain", "cipher": "aes-xts-plain64", "key_size": 512})
	out := must(t, "attach", dev, "--ref", ref, "--name", "crypt-plain")
	if out["formatted"] != false || out["format"] != "plain" || out["key_size"] != 512.0 {
		t.Fatalf("attach plain: %v", out)
	}
	data := pattern(0x21, mib)
	writeAt(t, "/dev/mapper/crypt-plain", 8*mib, data)
	must(t, "detach", "crypt-plain")
	if rawContains(t, dev, data[:4096]) {
		t.Fatal("plaintext on the plain disk")
	}
	if ok, _ := cryptsetup.New("").IsLUKS(context.Background(), dev); ok {
		t.Fatal("a plain volume got a LUKS header")
	}
	must(t, "attach", dev, "--ref", ref, "--name", "crypt-plain")
	if !bytes.Equal(readAt(t, "/dev/mapper/crypt-plain", 8*mib, mib), data) {
		t.Fatal("plain: data did not round-trip")
	}
	must(t, "detach", "crypt-plain")
}

// The cloud grows the volume while it is attached (QMP block_resize on the
// host side, asked for with a KWVM-RESIZE line); extend makes the mapping
// follow and the data stays.
func TestExtend(t *testing.T) {
	const id, grown = "d3", 96 * mib
	dev := disk(t, id)
	ref := order(t, "key", "vol-grow", map[string]any{"format": "luks2"})
	out := must(t, "attach", dev, "--ref", ref)
	name := "crypt-" + filepath.Base(dev)
	mapped := out["mapped"].(string)
	before, err := hostlib.DeviceSize(mapped)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(0x5a, mib)
	writeAt(t, mapped, 0, data)
	writeAt(t, mapped, before-mib, data)
	fmt.Printf("KWVM-RESIZE %s %d\n", id, grown)
	waitSize(t, dev, grown)
	if now, _ := hostlib.DeviceSize(mapped); now != before {
		t.Fatalf("mapping changed size before extend: %d → %d", before, now)
	}
	got := must(t, "extend", name, "--ref", ref)
	after, _ := hostlib.DeviceSize(mapped)
	if after != before+32*mib || got["size"] != float64(after) {
		t.Fatalf("extend: mapping %d → %d bytes (printed %v), want +32 MiB", before, after, got["size"])
	}
	for _, off := range []int64{0, before - mib} {
		if !bytes.Equal(readAt(t, mapped, off, mib), data) {
			t.Fatalf("data at %d lost in the extend", off)
		}
	}
	writeAt(t, mapped, after-mib, data) // the new space is usable
	must(t, "detach", name)
	if r := host(t, "extend", name, "--ref", ref); r.code != exitNotOpen {
		t.Fatalf("extend of a closed mapping: exit %d, want %d", r.code, exitNotOpen)
	}
}

// waitSize waits for the guest kernel to see the disk's new capacity.
func waitSize(t *testing.T, dev string, want int64) {
	t.Helper()
	sys := filepath.Join("/sys/block", filepath.Base(dev), "size")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(sys)
		if n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); n*512 == want {
			return
		}
	}
	t.Fatalf("%s never grew to %d bytes", dev, want)
}

// A volume an old release formatted with the mangled hex passphrase: attach
// opens it with the legacy form, re-keys it, and the next attach is clean.
func TestAttachLegacyVolume(t *testing.T) {
	dev := disk(t, "d4")
	var ref string
	var key []byte
	for i := 0; ; i++ { // a key with a byte below 0x10, so the legacy form differs
		ref = order(t, "key", fmt.Sprintf("vol-legacy-%d", i), map[string]any{"format": "luks1"})
		key = payload(t, ref)
		if !bytes.Equal(crypto.LegacyHexPassphrase(key), crypto.HexPassphrase(key)) {
			break
		}
	}
	legacy := crypto.LegacyHexPassphrase(key)
	cs := cryptsetup.New("")
	if err := cs.Format(context.Background(), dev, legacy, cryptsetup.FormatOptions{Type: cryptsetup.LUKS1, PBKDF: cryptsetup.FastPBKDF}); err != nil {
		t.Fatal(err)
	}
	out := must(t, "attach", dev, "--ref", ref, "--name", "crypt-legacy")
	if out["legacy"] != true || out["rekeyed"] != true || out["formatted"] != false {
		t.Fatalf("legacy attach: %v", out)
	}
	data := pattern(0x11, mib)
	writeAt(t, "/dev/mapper/crypt-legacy", 0, data)
	must(t, "detach", "crypt-legacy")
	if err := cs.TestPassphrase(context.Background(), dev, legacy); err == nil {
		t.Fatal("the legacy passphrase still opens the volume after the re-key")
	}
	out = must(t, "attach", dev, "--ref", ref, "--name", "crypt-legacy")
	if out["legacy"] != false || !bytes.Equal(readAt(t, "/dev/mapper/crypt-legacy", 0, mib), data) {
		t.Fatalf("after re-key: %v", out)
	}
	must(t, "detach", "crypt-legacy")
}

// The wrong secret: exit 6, no mapping left, the link untouched and the
// volume not reformatted. A mapping in use: detach exits 8 saying so, and
// the mapping stays until its user lets go.
func TestWrongKeyAndBusyDetach(t *testing.T) {
	dev := disk(t, "d5")
	right := order(t, "key", "vol-right", map[string]any{"format": "luks1"})
	wrong := order(t, "key", "vol-wrong", map[string]any{"format": "luks1"})
	link := connector(t, "vol-busy", dev)
	must(t, "attach", "--link", link, "--ref", right)
	data := pattern(0x77, mib)
	writeAt(t, link, 0, data)
	must(t, "detach", "--link", link)
	connector(t, "vol-busy", dev)

	r := host(t, "attach", "--link", link, "--ref", wrong)
	if r.code != exitWrongPass || !strings.Contains(r.stderr, "wrong passphrase") {
		t.Fatalf("wrong key: exit %d (want %d): %s", r.code, exitWrongPass, r.stderr)
	}
	gone(t, "crypt-vol-busy")
	if target, _ := os.Readlink(link); target != dev {
		t.Fatalf("a failed attach moved the link to %q", target)
	}

	must(t, "attach", "--link", link, "--ref", right) // still the old volume, not reformatted
	if !bytes.Equal(readAt(t, link, 0, mib), data) {
		t.Fatal("data lost after a wrong-key attach")
	}
	holder, err := os.Open("/dev/mapper/crypt-vol-busy")
	if err != nil {
		t.Fatal(err)
	}
	// An open descriptor is what a running VM's disk holds.
	r = host(t, "detach", "--link", link)
	if r.code != exitBusy || !strings.Contains(r.stderr, "in use") {
		t.Fatalf("busy detach: exit %d (want %d): %s", r.code, exitBusy, r.stderr)
	}
	mustBlock(t, "/dev/mapper/crypt-vol-busy")
	holder.Close()
	must(t, "detach", "--link", link)
	gone(t, "crypt-vol-busy")
}

// Flags override the record only with a warning.
func TestFlagOverrideWarns(t *testing.T) {
	dev := disk(t, "d6")
	ref := order(t, "key", "vol-override", map[string]any{"format": "luks1"})
	r := host(t, "attach", dev, "--ref", ref, "--type", "luks2", "--name", "crypt-override")
	if r.code != 0 || !strings.Contains(r.stderr, "--type luks2 overrides the key manager's record (luks1)") {
		t.Fatalf("override: exit %d: %s", r.code, r.stderr)
	}
	if h := header(t, dev); h.Version != 2 {
		t.Fatalf("--type luks2 gave a LUKS%d header", h.Version)
	}
	must(t, "detach", "crypt-override")
}

// A volume an older Nova attached under the bare link name (no crypt-
// prefix) is found by --link, as os-brick finds it during a rolling upgrade.
func TestOldMappingNameFoundByLink(t *testing.T) {
	dev := disk(t, "d6")
	ref := order(t, "key", "vol-old", map[string]any{"format": "luks1"})
	pass := crypto.HexPassphrase(payload(t, ref))
	cs := cryptsetup.New("")
	ctx := context.Background()
	if err := cs.Format(ctx, dev, pass, cryptsetup.FormatOptions{PBKDF: cryptsetup.FastPBKDF}); err != nil {
		t.Fatal(err)
	}
	link := connector(t, "vol-old", dev)
	if err := cs.Open(ctx, dev, "vol-old", pass, cryptsetup.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := must(t, "extend", "--link", link, "--ref", ref); got["name"] != "vol-old" {
		t.Fatalf("extend picked %v, want the old mapping vol-old", got["name"])
	}
	if got := must(t, "detach", "--link", link); got["name"] != "vol-old" {
		t.Fatalf("detach picked %v", got["name"])
	}
	gone(t, "vol-old")
}
