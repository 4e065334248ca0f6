package cryptsetup

import (
	"context"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/keywarden/keywarden/hostlib/hosttest"
	"github.com/keywarden/keywarden/hostlib/luks"
)

var ctx = context.Background()

func newCS(t testing.TB) *Cryptsetup {
	hosttest.Need(t, "cryptsetup")
	return New("")
}

func fastFormat(t testing.TB, cs *Cryptsetup, dev, typ string, pass []byte) {
	t.Helper()
	if err := cs.Format(ctx, dev, pass, FormatOptions{Type: typ, PBKDF: FastPBKDF}); err != nil {
		t.Fatalf("format %s: %v", typ, err)
	}
}

// Format a 64 MiB file and a loop device with LUKS1 and LUKS2; both
// cryptsetup and the Go verifier must take the passphrase and refuse others.
func TestFormatFileAndLoopDevice(t *testing.T) {
	cs := newCS(t)
	for _, typ := range []string{LUKS1, LUKS2} {
		for _, onLoop := range []bool{false, true} {
			name := typ + "/file"
			if onLoop {
				name = typ + "/loop"
			}
			t.Run(name, func(t *testing.T) {
				dev := hosttest.SparseFile(t, 64)
				if onLoop {
					dev = hosttest.LoopDevice(t, dev)
				}
				pass := hosttest.HexPass(t)
				start := time.Now()
				fastFormat(t, cs, dev, typ, pass)
				if err := cs.TestPassphrase(ctx, dev, pass); err != nil {
					t.Fatalf("test-passphrase: %v", err)
				}
				t.Logf("fast format+unlock: %v", time.Since(start))
				if ok, err := cs.IsLUKS(ctx, dev); !ok || err != nil {
					t.Fatalf("IsLUKS = %v, %v", ok, err)
				}
				wrong := append([]byte(nil), pass...)
				wrong[0] ^= 1
				if err := cs.TestPassphrase(ctx, dev, wrong); !errors.Is(err, ErrWrongPassphrase) {
					t.Fatalf("wrong passphrase: %v", err)
				}
				h, slot, err := luks.VerifyFile(dev, pass)
				if err != nil || slot != 0 {
					t.Fatalf("go verifier: slot %d, %v", slot, err)
				}
				if want := map[string]int{LUKS1: 1, LUKS2: 2}[typ]; h.Version != want || h.KeyBytes != 64 || h.Cipher != "aes-xts-plain64" {
					t.Fatalf("header %+v", h)
				}
				if k := h.Keyslots[0].KDF; k.Type != "pbkdf2" || k.Iterations != 1000 {
					t.Fatalf("fast profile not applied: %+v", k)
				}
				if _, _, err := luks.VerifyFile(dev, wrong); !errors.Is(err, luks.ErrWrongPassphrase) {
					t.Fatalf("go verifier, wrong passphrase: %v", err)
				}
			})
		}
	}
}

func TestFormatOptionsReachHeader(t *testing.T) {
	cs := newCS(t)
	dev := hosttest.SparseFile(t, 32)
	pass := hosttest.HexPass(t)
	o := FormatOptions{Type: LUKS2, Cipher: "aes-xts-plain64", KeySizeBits: 256, SectorSize: 4096,
		PBKDF: PBKDF{Type: "pbkdf2", Hash: "sha512", Iterations: 2000}, Label: "kw-test",
		UUID: "3f1c4a9e-4c1e-4c8b-9f27-0d2b8e1a5c77"}
	if err := cs.Format(ctx, dev, pass, o); err != nil {
		t.Fatal(err)
	}
	h, _, err := luks.VerifyFile(dev, pass)
	if err != nil {
		t.Fatal(err)
	}
	k := h.Keyslots[0]
	if h.KeyBytes != 32 || h.UUID != o.UUID || k.KDF.Hash != "sha512" || k.KDF.Iterations != 2000 {
		t.Fatalf("header %+v slot %+v", h, k)
	}
}

func TestIsLUKSAndNotLUKS(t *testing.T) {
	cs := newCS(t)
	plain := hosttest.SparseFile(t, 4)
	if ok, err := cs.IsLUKS(ctx, plain); ok || err != nil {
		t.Fatalf("zero file: IsLUKS = %v, %v", ok, err)
	}
	if err := cs.TestPassphrase(ctx, plain, []byte("x")); !errors.Is(err, ErrNotLUKS) {
		t.Fatalf("TestPassphrase on a non-LUKS file: %v", err)
	}
	if _, err := cs.IsLUKS(ctx, "/nonexistent/disk"); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("missing device: %v", err)
	}
	var ce *Error
	err := cs.TestPassphrase(ctx, plain, []byte("x"))
	if !errors.As(err, &ce) || ce.ExitCode == 0 || ce.Op == "" {
		t.Fatalf("error carries no detail: %#v", err)
	}
}

func TestKeyslotLifecycle(t *testing.T) {
	cs := newCS(t)
	for _, typ := range []string{LUKS1, LUKS2} {
		t.Run(typ, func(t *testing.T) {
			dev := hosttest.SparseFile(t, 20)
			a, b, c := hosttest.HexPass(t), hosttest.HexPass(t), hosttest.HexPass(t)
			fastFormat(t, cs, dev, typ, a)
			if err := cs.RemoveKey(ctx, dev, a); !errors.Is(err, ErrLastKeyslot) {
				t.Fatalf("removing the only keyslot: %v", err)
			}
			if err := cs.AddKey(ctx, dev, c, b, FastPBKDF, -1); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("AddKey with a wrong existing key: %v", err)
			}
			if err := cs.AddKey(ctx, dev, a, b, FastPBKDF, 5); err != nil {
				t.Fatal(err)
			}
			if _, slot, err := luks.VerifyFile(dev, b); err != nil || slot != 5 {
				t.Fatalf("added key: slot %d %v", slot, err)
			}
			if err := cs.ChangeKey(ctx, dev, b, c, FastPBKDF); err != nil {
				t.Fatal(err)
			}
			for pass, want := range map[*[]byte]error{&a: nil, &b: ErrWrongPassphrase, &c: nil} {
				if err := cs.TestPassphrase(ctx, dev, *pass); !errors.Is(err, want) {
					t.Fatalf("after change: %v, want %v", err, want)
				}
			}
			if err := cs.RemoveKey(ctx, dev, b); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("removing an unknown key: %v", err)
			}
			if err := cs.RemoveKey(ctx, dev, a); err != nil {
				t.Fatal(err)
			}
			if err := cs.TestPassphrase(ctx, dev, a); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("removed key still opens: %v", err)
			}
			if err := cs.TestPassphrase(ctx, dev, c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPBKDFArgs(t *testing.T) {
	got, err := FastPBKDF.args(LUKS2)
	want := []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--hash", "sha256"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("fast args = %v %v", got, err)
	}
	for _, bad := range []struct {
		p   PBKDF
		typ string
	}{
		{PBKDF{Type: "argon2id", Iterations: 1000}, LUKS2}, // would spin for minutes
		{PBKDF{Iterations: 1000}, LUKS2},                   // LUKS2 default is argon2id
		{PBKDF{Type: "argon2i"}, LUKS1},
		{PBKDF{Type: "pbkdf2", MemoryKiB: 1024}, LUKS2},
		{PBKDF{Type: "scrypt"}, LUKS2},
	} {
		if _, err := bad.p.args(bad.typ); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v on %s accepted", bad.p, bad.typ)
		}
	}
	if _, err := (FormatOptions{Type: LUKS1, SectorSize: 4096}).args(); !errors.Is(err, ErrInvalid) {
		t.Error("LUKS1 with 4096-byte sectors accepted")
	}
}

func TestRefusesBadInput(t *testing.T) {
	cs := newCS(t)
	dev := hosttest.SparseFile(t, 4)
	if err := cs.Format(ctx, dev, nil, FormatOptions{PBKDF: FastPBKDF}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty passphrase: %v", err)
	}
	if err := cs.Format(ctx, "--help", []byte("x"), FormatOptions{PBKDF: FastPBKDF}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("option-like device: %v", err)
	}
	for _, name := range []string{"", "-x", "a/b", "a b"} {
		if err := cs.Close(ctx, name); !errors.Is(err, ErrInvalid) {
			t.Fatalf("mapping name %q: %v", name, err)
		}
	}
	if err := New("/nonexistent/cryptsetup").TestPassphrase(ctx, dev, []byte("x")); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("missing binary: %v", err)
	}
}

// Cryptsetup defaults (PBKDF benchmarked to ~2 s): the slow path a human
// passphrase gets. Kept out of -short runs.
func TestDefaultPBKDF(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: cryptsetup default PBKDF takes seconds")
	}
	cs := newCS(t)
	dev := hosttest.SparseFile(t, 20)
	pass := []byte("correct horse battery staple")
	start := time.Now()
	if err := cs.Format(ctx, dev, pass, FormatOptions{Type: LUKS2}); err != nil {
		t.Fatal(err)
	}
	if err := cs.TestPassphrase(ctx, dev, pass); err != nil {
		t.Fatal(err)
	}
	t.Logf("default format+unlock: %v", time.Since(start))
	h, _, err := luks.VerifyFile(dev, pass)
	if err != nil {
		t.Fatal(err)
	}
	if h.Keyslots[0].KDF.Type != "argon2id" {
		t.Fatalf("default LUKS2 kdf = %q, want argon2id", h.Keyslots[0].KDF.Type)
	}
}

func TestVersion(t *testing.T) {
	v, err := newCS(t).Version(ctx)
	if err != nil || len(v) < 3 || v[0] < '1' || v[0] > '9' {
		t.Fatalf("version %q %v", v, err)
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
