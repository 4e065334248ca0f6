package hostlib

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/hosttest"
	"github.com/keywarden/keywarden/hostlib/luks"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
)

// Figures and the command that produced them: docs/BENCHMARKS.md (host library section).
//
//	go test -run '^$' -bench . -benchtime 5x ./hostlib/

func benchSecret(b *testing.B) *Secret {
	k := make([]byte, 32)
	rand.Read(k)
	return NewSecret("bench", TypeSymmetric, k)
}

var profiles = []struct {
	name string
	p    string
}{{"fast", ProfileFast}, {"default", ProfileDefault}}

// BenchmarkFormatUnlock: luksFormat of a 64 MiB file, then unlock
// (cryptsetup open --test-passphrase), per profile and LUKS version.
func BenchmarkFormatUnlock(b *testing.B) {
	hosttest.Need(b, "cryptsetup")
	for _, pr := range profiles {
		for _, typ := range []string{cryptsetup.LUKS1, cryptsetup.LUKS2} {
			b.Run(pr.name+"/"+typ, func(b *testing.B) {
				h := NewHost()
				h.Profile = pr.p
				s := benchSecret(b)
				dev := hosttest.SparseFile(b, 64)
				for b.Loop() {
					if err := h.Format(ctx, dev, s, cryptsetup.FormatOptions{Type: typ}); err != nil {
						b.Fatal(err)
					}
					if _, err := h.TestUnlock(ctx, dev, s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGoVerify: the pure-Go verifier on a header made with each
// profile (cost is the keyslot KDF plus the digest).
func BenchmarkGoVerify(b *testing.B) {
	hosttest.Need(b, "cryptsetup")
	for _, pr := range profiles {
		for _, typ := range []string{cryptsetup.LUKS1, cryptsetup.LUKS2} {
			b.Run(pr.name+"/"+typ, func(b *testing.B) {
				h := NewHost()
				h.Profile = pr.p
				s := benchSecret(b)
				dev := hosttest.SparseFile(b, 64)
				if err := h.Format(ctx, dev, s, cryptsetup.FormatOptions{Type: typ}); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := Verify(dev, s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkConvert256MiB: a fully written 256 MiB qcow2+LUKS image becomes
// raw LUKS under another secret. "fast" pre-formats the target with
// cryptsetup; "default" lets qemu-img create it (PBKDF benchmark, 2 s).
func BenchmarkConvert256MiB(b *testing.B) {
	hosttest.Need(b, "qemu-img")
	hosttest.Need(b, "qemu-io")
	h := NewHost()
	dir := b.TempDir()
	src := filepath.Join(dir, "src.qcow2")
	srcSecret := benchSecret(b)
	if _, err := h.CreateImage(ctx, src, srcSecret, qemuimg.CreateOptions{Format: qemuimg.QCOW2, SizeBytes: 256 << 20}); err != nil {
		b.Fatal(err)
	}
	srcPass, _ := Passphrase(srcSecret)
	if err := hosttest.QemuIO(src, qemuimg.QCOW2, srcPass, "write -P 0xab 0 256M"); err != nil {
		b.Fatal(err)
	}
	for _, pr := range profiles {
		b.Run(pr.name, func(b *testing.B) {
			h.Profile = pr.p
			dstSecret := benchSecret(b)
			dst := filepath.Join(dir, "dst.luks")
			b.SetBytes(256 << 20)
			for b.Loop() {
				os.Remove(dst)
				if _, err := h.ConvertImage(ctx, ImageSpec{Path: src, Secret: srcSecret}, ImageSpec{Path: dst, Secret: dstSecret}, qemuimg.ConvertOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			dstPass, _ := Passphrase(dstSecret)
			if err := hosttest.QemuIO(dst, qemuimg.LUKS, dstPass, "read -P 0xab 255M 1M"); err != nil {
				b.Fatal(err)
			}
			if _, _, err := luks.VerifyFile(dst, dstPass); err != nil {
				b.Fatal(err)
			}
		})
	}
}
