package qemuimg

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/hosttest"
	"github.com/keywarden/keywarden/hostlib/internal/secretexec"
	"github.com/keywarden/keywarden/hostlib/luks"
)

var ctx = context.Background()

const mib = 1 << 20

// fixture is one qcow2+LUKS image holding 0xab in its first MiB, shared by
// the tests that only read it: each qemu-img LUKS create costs a ~2 s PBKDF
// benchmark, whatever the iteration target.
var fixture struct {
	once sync.Once
	dir  string
	path string
	pass []byte
	err  error
}

func source(t *testing.T) (string, []byte) {
	t.Helper()
	hosttest.Need(t, "qemu-img")
	hosttest.Need(t, "qemu-io")
	fixture.once.Do(func() {
		fixture.dir, fixture.err = os.MkdirTemp("", "kw-qemuimg-")
		if fixture.err != nil {
			return
		}
		fixture.path = filepath.Join(fixture.dir, "image.qcow2")
		fixture.pass = hosttest.HexPass(t)
		fixture.err = New("").Create(ctx, fixture.path, fixture.pass, CreateOptions{Format: QCOW2, SizeBytes: 64 * mib, IterTimeMS: 10})
		if fixture.err == nil {
			fixture.err = qemuIO(fixture.path, QCOW2, fixture.pass, "write -P 0xab 0 1M")
		}
	})
	if fixture.err != nil {
		t.Fatalf("fixture: %v", fixture.err)
	}
	return fixture.path, fixture.pass
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// qemuIO checks data through QEMU's own LUKS driver, independently of the
// code under test.
func qemuIO(path, format string, pass []byte, command string) error {
	return hosttest.QemuIO(path, format, pass, command)
}

// preformat makes a raw LUKS target the fast way: cryptsetup with a fixed
// PBKDF2 count, sized header + 64 MiB.
func preformat(t *testing.T, path string, pass []byte) {
	t.Helper()
	hosttest.Need(t, "cryptsetup")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(path, 66*mib) // LUKS1 with a 512-bit key puts data at 2 MiB
	if err := cryptsetup.New("").Format(ctx, path, pass, cryptsetup.FormatOptions{Type: cryptsetup.LUKS1, PBKDF: cryptsetup.FastPBKDF}); err != nil {
		t.Fatal(err)
	}
}

// The image → volume path end to end: qcow2+LUKS under one secret becomes
// raw LUKS under another; data reads back; both the Go verifier and
// cryptsetup accept the new header; no secret shows in any command line.
func TestConvertQcow2ToRawLUKSUnderNewSecret(t *testing.T) {
	src, srcPass := source(t)
	dst := filepath.Join(t.TempDir(), "volume.luks")
	dstPass := hosttest.HexPass(t)

	scan := hosttest.StartScan([][]byte{srcPass, dstPass}, "qemu-img")
	err := New("").Convert(ctx, Image{Path: src, Passphrase: srcPass}, Image{Path: dst, Format: LUKS, Passphrase: dstPass},
		ConvertOptions{Create: CreateOptions{IterTimeMS: 10}})
	rep := scan.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seen["qemu-img"] == 0 {
		t.Fatalf("scanner never saw qemu-img running (%d scans): proves nothing", rep.Scans)
	}
	if len(rep.Leaks) > 0 {
		t.Fatalf("secret in a command line: %q", rep.Leaks)
	}
	t.Logf("cmdline scan: %d scans, qemu-img seen %d times, no secret", rep.Scans, rep.Seen["qemu-img"])

	if err := qemuIO(dst, LUKS, dstPass, "read -P 0xab 0 1M"); err != nil {
		t.Fatal(err)
	}
	if err := qemuIO(dst, LUKS, dstPass, "read -P 0xac 0 1M"); err == nil {
		t.Fatal("qemu-io accepted a wrong pattern: the read-back check is blind")
	}
	if err := qemuIO(dst, LUKS, srcPass, "read -P 0xab 0 1M"); err == nil {
		t.Fatal("target opens with the source's secret")
	}
	if _, slot, err := luks.VerifyFile(dst, dstPass); err != nil || slot != 0 {
		t.Fatalf("go verifier on raw LUKS: %d %v", slot, err)
	}
	if _, _, err := luks.VerifyFile(dst, srcPass); !errors.Is(err, luks.ErrWrongPassphrase) {
		t.Fatalf("go verifier took the old secret: %v", err)
	}
	if hdr, _, err := luks.VerifyFile(src, srcPass); err != nil || hdr.Container != "qcow2" {
		t.Fatalf("go verifier on qcow2+LUKS: %v", err)
	}
	if _, err := os.Stat("/usr/sbin/cryptsetup"); err == nil {
		if err := cryptsetup.New("").TestPassphrase(ctx, dst, dstPass); err != nil {
			t.Fatalf("cryptsetup refuses the raw LUKS image: %v", err)
		}
	}
	size, err := New("").DecryptSize(ctx, dst, LUKS)
	if err != nil || size != 64*mib {
		t.Fatalf("decrypt size of target = %d %v", size, err)
	}
}

func TestConvertIntoExistingTargets(t *testing.T) {
	src, srcPass := source(t)
	q := New("")
	t.Run("file-same-secret", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "vol.luks")
		preformat(t, dst, srcPass)
		if err := q.Convert(ctx, Image{Path: src, Format: QCOW2, Passphrase: srcPass}, Image{Path: dst, Format: LUKS, Passphrase: srcPass}, ConvertOptions{TargetExists: true}); err != nil {
			t.Fatal(err)
		}
		if err := qemuIO(dst, LUKS, srcPass, "read -P 0xab 0 1M"); err != nil {
			t.Fatal(err)
		}
		if err := qemuIO(dst, LUKS, srcPass, "read -P 0 1M 1M"); err != nil {
			t.Fatalf("unallocated source range must read as zeros: %v", err)
		}
	})
	t.Run("loop-device", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "backing")
		pass := hosttest.HexPass(t)
		preformat(t, file, pass)
		dev := hosttest.LoopDevice(t, file)
		if err := q.Convert(ctx, Image{Path: src, Passphrase: srcPass}, Image{Path: dev, Format: LUKS, Passphrase: pass}, ConvertOptions{TargetExists: true}); err != nil {
			t.Fatal(err)
		}
		if err := qemuIO(dev, LUKS, pass, "read -P 0xab 0 1M"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("memfd-and-progress", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "vol.luks")
		pass := hosttest.HexPass(t)
		preformat(t, dst, pass)
		var got []float64
		mq := &QemuImg{Mode: secretexec.Memfd}
		err := mq.Convert(ctx, Image{Path: src, Format: QCOW2, Passphrase: srcPass}, Image{Path: dst, Format: LUKS, Passphrase: pass},
			ConvertOptions{TargetExists: true, Progress: func(p float64) { got = append(got, p) }})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 2 || got[len(got)-1] != 100 {
			t.Fatalf("progress = %v, want several values ending at 100", got)
		}
		for i := 1; i < len(got); i++ {
			if got[i] < got[i-1] {
				t.Fatalf("progress went backwards: %v", got)
			}
		}
		if err := qemuIO(dst, LUKS, pass, "read -P 0xab 0 1M"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConvertWrongSourceSecret(t *testing.T) {
	src, _ := source(t)
	dst := filepath.Join(t.TempDir(), "vol.luks")
	err := New("").Convert(ctx, Image{Path: src, Format: QCOW2, Passphrase: []byte("wrong")}, Image{Path: dst, Format: LUKS, Passphrase: []byte("x")}, ConvertOptions{})
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("err = %v, want ErrWrongPassphrase", err)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Log("note: qemu-img left a target behind after failing")
	}
}

func TestDecryptSize(t *testing.T) {
	src, _ := source(t)
	q := New("")
	if n, err := q.DecryptSize(ctx, src, QCOW2); err != nil || n != 64*mib {
		t.Fatalf("qcow2+LUKS decrypt size = %d %v", n, err)
	}
	plain := filepath.Join(t.TempDir(), "plain.raw")
	os.WriteFile(plain, make([]byte, 4096), 0o600)
	if _, err := q.DecryptSize(ctx, plain, ""); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("unencrypted image: %v", err)
	}
	if _, err := q.Info(ctx, filepath.Join(t.TempDir(), "missing"), ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing image: %v", err)
	}
}

// Nova's ivgen-hash-alg=sha256 writes "xts-plain64:sha256", which
// cryptsetup's userspace cannot check; the Go verifier can. The path holds
// a comma to prove option escaping.
func TestRawLUKSCreateNovaHeaderAndCommaPath(t *testing.T) {
	hosttest.Need(t, "qemu-img")
	path := filepath.Join(t.TempDir(), "a,key-secret=evil.luks")
	pass := hosttest.HexPass(t)
	o := CreateOptions{Format: LUKS, SizeBytes: 16 * mib, IVGenHashAlg: "sha256", IterTimeMS: 10}
	if err := New("").Create(ctx, path, pass, o); err != nil {
		t.Fatal(err)
	}
	h, _, err := luks.VerifyFile(path, pass)
	if err != nil {
		t.Fatal(err)
	}
	if h.Cipher != "aes-xts-plain64:sha256" {
		t.Fatalf("cipher = %q", h.Cipher)
	}
	// A fresh raw LUKS payload decrypts to noise, so write before reading.
	if err := qemuIO(path, LUKS, pass, "write -P 0x5a 0 64k"); err != nil {
		t.Fatalf("image-opts with a comma in the path: %v", err)
	}
	if err := qemuIO(path, LUKS, pass, "read -P 0x5a 0 64k"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := luks.VerifyFile(path, pass[1:]); !errors.Is(err, luks.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if err := New("").Create(ctx, path, pass, CreateOptions{Format: "vmdk", SizeBytes: 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown format: %v", err)
	}
}

func TestVersion(t *testing.T) {
	hosttest.Need(t, "qemu-img")
	if v, err := New("").Version(ctx); err != nil || v == "" || v[0] < '1' || v[0] > '9' {
		t.Fatalf("version %q %v", v, err)
	}
}
