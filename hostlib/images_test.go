package hostlib

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib/hosttest"
	"github.com/keywarden/keywarden/hostlib/luks"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
)

const mib = 1 << 20

func imageHost(t *testing.T) *Host {
	hosttest.Need(t, "qemu-img")
	hosttest.Need(t, "qemu-io")
	return newHost(t)
}

func TestCreateRawLUKSFastIsCryptsetupAndQemuReadable(t *testing.T) {
	h := imageHost(t)
	s := legacyKey(t)
	path := filepath.Join(t.TempDir(), "img.luks")
	start := time.Now()
	creator, err := h.CreateImage(ctx, path, s, qemuimg.CreateOptions{Format: qemuimg.LUKS, SizeBytes: 64 * mib})
	if err != nil || creator != "cryptsetup" {
		t.Fatalf("creator %q %v", creator, err)
	}
	t.Logf("fast raw LUKS create: %v", time.Since(start))
	if n, err := h.QemuImg.DecryptSize(ctx, path, qemuimg.LUKS); err != nil || n != 64*mib {
		t.Fatalf("decrypt size %d %v, want exactly 64 MiB", n, err)
	}
	pass := crypto.HexPassphrase(s.Material())
	if err := hosttest.QemuIO(path, qemuimg.LUKS, pass, "write -P 0x11 63M 1M"); err != nil {
		t.Fatal(err)
	}
	if err := hosttest.QemuIO(path, qemuimg.LUKS, pass, "read -P 0x11 63M 1M"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("image mode %v, want 0600", st.Mode().Perm())
	}
}

// An image whose secret only matches in legacy form (a Cinder image of an
// old volume) converts through the fallback; the volume gets the correct
// passphrase of a different secret.
func TestConvertImageLegacySourceToNewSecret(t *testing.T) {
	h := imageHost(t)
	src := filepath.Join(t.TempDir(), "img.qcow2")
	srcSecret := legacyKey(t)
	legacy := crypto.LegacyHexPassphrase(srcSecret.Material())
	if err := h.QemuImg.Create(ctx, src, legacy, qemuimg.CreateOptions{Format: qemuimg.QCOW2, SizeBytes: 32 * mib, IterTimeMS: 10}); err != nil {
		t.Fatal(err)
	}
	if err := hosttest.QemuIO(src, qemuimg.QCOW2, legacy, "write -P 0xab 0 1M"); err != nil {
		t.Fatal(err)
	}
	dstSecret := legacyKey(t)
	dst := filepath.Join(t.TempDir(), "vol.luks")
	var progress []float64
	res, err := h.ConvertImage(ctx, ImageSpec{Path: src, Secret: srcSecret}, ImageSpec{Path: dst, Secret: dstSecret},
		qemuimg.ConvertOptions{Progress: func(p float64) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if !res.SourceLegacy || res.DecryptSize != 32*mib || res.TargetCreator != "cryptsetup" {
		t.Fatalf("result %+v", res)
	}
	if len(progress) == 0 || progress[len(progress)-1] != 100 {
		t.Fatalf("progress %v", progress)
	}
	dstPass := crypto.HexPassphrase(dstSecret.Material())
	if err := hosttest.QemuIO(dst, qemuimg.LUKS, dstPass, "read -P 0xab 0 1M"); err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(dst, dstSecret); err != nil || v.Legacy {
		t.Fatalf("target verify: %+v %v", v, err)
	}
	if _, err := Verify(dst, srcSecret); !errors.Is(err, luks.ErrWrongPassphrase) {
		t.Fatalf("target opens with the source secret: %v", err)
	}
}

func TestConvertFailureRemovesCreatedTarget(t *testing.T) {
	h := imageHost(t)
	src := filepath.Join(t.TempDir(), "img.luks")
	s := legacyKey(t)
	if _, err := h.CreateImage(ctx, src, s, qemuimg.CreateOptions{Format: qemuimg.LUKS, SizeBytes: 4 * mib}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "vol.luks")
	_, err := h.ConvertImage(ctx, ImageSpec{Path: src, Secret: legacyKey(t)}, ImageSpec{Path: dst, Secret: s}, qemuimg.ConvertOptions{})
	if !errors.Is(err, qemuimg.ErrWrongPassphrase) {
		t.Fatalf("wrong source secret: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("half-made target left behind: %v", err)
	}
}
