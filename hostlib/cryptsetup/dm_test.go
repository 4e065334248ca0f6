package cryptsetup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keywarden/keywarden/hostlib/hosttest"
)

// Where device-mapper is missing (these build machines), every mapping
// operation must say so with ErrNoDeviceMapper rather than a vague failure.
func TestMappingWithoutDeviceMapper(t *testing.T) {
	if ok, _ := hosttest.DeviceMapper(); ok {
		t.Skip("device-mapper works here; TestOpenCloseResize covers mappings")
	}
	cs := newCS(t)
	dev := hosttest.SparseFile(t, 8)
	pass := hosttest.HexPass(t)
	fastFormat(t, cs, dev, LUKS1, pass)
	checks := map[string]error{
		"open":      cs.Open(ctx, dev, "kw-nodm", pass, OpenOptions{}),
		"openPlain": cs.OpenPlain(ctx, dev, "kw-nodm", pass, PlainOptions{KeySizeBits: 256}),
		"close":     cs.Close(ctx, "kw-nodm"),
		"resize":    cs.Resize(ctx, "kw-nodm", pass, 0),
	}
	for op, err := range checks {
		if !errors.Is(err, ErrNoDeviceMapper) {
			t.Errorf("%s without device-mapper: %v", op, err)
		}
	}
	if _, err := cs.Active(ctx, "kw-nodm"); !errors.Is(err, ErrNoDeviceMapper) {
		t.Errorf("status without device-mapper: %v", err)
	}
}

func TestOpenCloseResize(t *testing.T) {
	hosttest.NeedDeviceMapper(t)
	cs := newCS(t)
	for _, typ := range []string{LUKS1, LUKS2} {
		t.Run(typ, func(t *testing.T) {
			file := hosttest.SparseFile(t, 64)
			dev := hosttest.LoopDevice(t, file)
			pass := hosttest.HexPass(t)
			fastFormat(t, cs, dev, typ, pass)
			name := "kw-test-" + typ
			t.Cleanup(func() { cs.Close(ctx, name) })
			if err := cs.Open(ctx, dev, name, append(pass, 'x'), OpenOptions{}); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("open with wrong passphrase: %v", err)
			}
			if err := cs.Open(ctx, dev, name, pass, OpenOptions{AllowDiscards: true}); err != nil {
				t.Fatal(err)
			}
			if err := cs.Open(ctx, dev, name, pass, OpenOptions{}); !errors.Is(err, ErrBusy) {
				t.Fatalf("second open of the same name: %v", err)
			}
			if on, err := cs.Active(ctx, name); !on || err != nil {
				t.Fatalf("active = %v %v", on, err)
			}
			mapped := filepath.Join("/dev/mapper", name)
			data := bytes.Repeat([]byte{0xab}, 4096)
			if err := os.WriteFile(mapped, data, 0); err != nil {
				t.Fatal(err)
			}
			if err := cs.Resize(ctx, name, pass, 8192); err != nil {
				t.Fatal(err)
			}
			if err := cs.Close(ctx, name); err != nil {
				t.Fatal(err)
			}
			if err := cs.Close(ctx, name); err != nil {
				t.Fatalf("second close must be a no-op: %v", err)
			}
			raw, _ := os.ReadFile(file)
			if bytes.Contains(raw, data) {
				t.Fatal("plaintext reached the backing file")
			}
			if err := cs.Open(ctx, dev, name, pass, OpenOptions{ReadOnly: true}); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(data))
			f, err := os.Open(mapped)
			if err != nil {
				t.Fatal(err)
			}
			f.ReadAt(got, 0)
			f.Close()
			if !bytes.Equal(got, data) {
				t.Fatal("data did not round-trip through the mapping")
			}
			if err := cs.Close(ctx, name); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPlainOpenClose(t *testing.T) {
	hosttest.NeedDeviceMapper(t)
	cs := newCS(t)
	dev := hosttest.LoopDevice(t, hosttest.SparseFile(t, 16))
	key := hosttest.HexPass(t) // 64 bytes: a 512-bit XTS key
	name := "kw-test-plain"
	t.Cleanup(func() { cs.Close(ctx, name) })
	if err := cs.OpenPlain(ctx, dev, name, key[:10], PlainOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
	if err := cs.OpenPlain(ctx, dev, name, key, PlainOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Close(ctx, name); err != nil {
		t.Fatal(err)
	}
}
