package hostlib

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/hosttest"
	"github.com/keywarden/keywarden/hostlib/luks"
)

var ctx = context.Background()

// legacyKey is a 256-bit key with bytes below 0x10, so its legacy
// mangled-hex passphrase differs from the correct one.
func legacyKey(t *testing.T) *Secret {
	k := make([]byte, 32)
	rand.Read(k)
	k[0], k[7], k[20] = 0x04, 0x00, 0x0f
	return NewSecret("vol-key", TypeSymmetric, k)
}

func newHost(t *testing.T) *Host {
	hosttest.Need(t, "cryptsetup")
	return NewHost()
}

// A volume formatted with the legacy mangled passphrase opens through the
// fallback (TestPassphrase: no device-mapper here) and is re-keyed.
func TestLegacyFallbackRekeys(t *testing.T) {
	h := newHost(t)
	for _, typ := range []string{cryptsetup.LUKS1, cryptsetup.LUKS2} {
		for _, loop := range []bool{false, true} {
			t.Run(typ+map[bool]string{false: "/file", true: "/loop"}[loop], func(t *testing.T) {
				dev := hosttest.SparseFile(t, 32)
				if loop {
					dev = hosttest.LoopDevice(t, dev)
				}
				s := legacyKey(t)
				defer s.Close()
				legacy := crypto.LegacyHexPassphrase(s.Material())
				correct := crypto.HexPassphrase(s.Material())
				if err := h.Cryptsetup.Format(ctx, dev, legacy, cryptsetup.FormatOptions{Type: typ, PBKDF: cryptsetup.FastPBKDF}); err != nil {
					t.Fatal(err)
				}
				if v, err := Verify(dev, s); err != nil || !v.Legacy {
					t.Fatalf("go verify before re-key: %+v %v", v, err)
				}

				scan := hosttest.StartScan([][]byte{legacy, correct}, "cryptsetup")
				res, err := h.TestUnlock(ctx, dev, s)
				rep := scan.Stop()
				if err != nil || !res.Legacy || !res.Rekeyed || res.RekeyErr != nil {
					t.Fatalf("fallback: %+v %v", res, err)
				}
				if len(rep.Leaks) > 0 {
					t.Fatalf("secret in a command line: %q", rep.Leaks)
				}
				if rep.Seen["cryptsetup"] == 0 {
					t.Fatal("scanner never saw cryptsetup: the leak check proves nothing")
				}

				if err := h.Cryptsetup.TestPassphrase(ctx, dev, correct); err != nil {
					t.Fatalf("correct passphrase after re-key: %v", err)
				}
				if err := h.Cryptsetup.TestPassphrase(ctx, dev, legacy); !errors.Is(err, cryptsetup.ErrWrongPassphrase) {
					t.Fatalf("legacy passphrase still opens: %v", err)
				}
				if v, err := Verify(dev, s); err != nil || v.Legacy {
					t.Fatalf("go verify after re-key: %+v %v", v, err)
				}
				hdr, _, _ := luks.VerifyFile(dev, correct)
				if len(hdr.Keyslots) != 1 {
					t.Fatalf("%d keyslots after re-key, want 1", len(hdr.Keyslots))
				}
				if res, err := h.TestUnlock(ctx, dev, s); err != nil || res.Legacy {
					t.Fatalf("next unlock not clean: %+v %v", res, err)
				}
			})
		}
	}
}

func TestLegacyFallbackWithoutRekey(t *testing.T) {
	h := newHost(t)
	h.NoRekey = true
	dev := hosttest.SparseFile(t, 8)
	s := legacyKey(t)
	legacy := crypto.LegacyHexPassphrase(s.Material())
	if err := h.Cryptsetup.Format(ctx, dev, legacy, cryptsetup.FormatOptions{PBKDF: cryptsetup.FastPBKDF}); err != nil {
		t.Fatal(err)
	}
	res, err := h.TestUnlock(ctx, dev, s)
	if err != nil || !res.Legacy || res.Rekeyed {
		t.Fatalf("%+v %v", res, err)
	}
	if err := h.Cryptsetup.TestPassphrase(ctx, dev, legacy); err != nil {
		t.Fatalf("NoRekey removed the legacy keyslot: %v", err)
	}
}

func TestWrongSecretIsRefused(t *testing.T) {
	h := newHost(t)
	dev := hosttest.SparseFile(t, 8)
	s, other := legacyKey(t), legacyKey(t)
	if err := h.Format(ctx, dev, s, cryptsetup.FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.TestUnlock(ctx, dev, other); !errors.Is(err, cryptsetup.ErrWrongPassphrase) {
		t.Fatalf("cryptsetup: %v", err)
	}
	if _, err := Verify(dev, other); !errors.Is(err, luks.ErrWrongPassphrase) {
		t.Fatalf("go verifier: %v", err)
	}
	if res, err := h.TestUnlock(ctx, dev, s); err != nil || res.Legacy {
		t.Fatalf("right secret: %+v %v", res, err)
	}
}

// Passphrase secrets keep cryptsetup's defaults under the auto profile;
// symmetric ones get the fast profile. Checked in the header itself.
func TestFormatPicksProfile(t *testing.T) {
	h := newHost(t)
	dev := hosttest.SparseFile(t, 8)
	s := legacyKey(t)
	start := time.Now()
	if err := h.Format(ctx, dev, s, cryptsetup.FormatOptions{Type: cryptsetup.LUKS1}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.TestUnlock(ctx, dev, s); err != nil {
		t.Fatal(err)
	}
	t.Logf("fast profile format+unlock: %v", time.Since(start))
	v, err := Verify(dev, s)
	if err != nil || v.Header.Keyslots[0].KDF.Iterations != 1000 {
		t.Fatalf("symmetric secret not on the fast profile: %+v %v", v.Header, err)
	}
	if p := ProfileFor(NewSecret("p", TypePassphrase, []byte("typed by a person"))); p.PBKDF != (cryptsetup.PBKDF{}) {
		t.Fatalf("passphrase secret profile = %+v, want cryptsetup defaults", p)
	}
}

func TestOpenWithDeviceMapper(t *testing.T) {
	h := newHost(t)
	dev := hosttest.SparseFile(t, 32)
	s := legacyKey(t)
	legacy := crypto.LegacyHexPassphrase(s.Material())
	if ok, _ := hosttest.DeviceMapper(); !ok {
		if err := h.Format(ctx, dev, s, cryptsetup.FormatOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Open(ctx, dev, "kw-host-test", s, cryptsetup.OpenOptions{}); !errors.Is(err, cryptsetup.ErrNoDeviceMapper) {
			t.Fatalf("open without device-mapper: %v", err)
		}
		hosttest.NeedDeviceMapper(t) // skips, with the reason
	}
	dev = hosttest.LoopDevice(t, dev)
	if err := h.Cryptsetup.Format(ctx, dev, legacy, cryptsetup.FormatOptions{PBKDF: cryptsetup.FastPBKDF}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx, "kw-host-test") })
	res, err := h.Open(ctx, dev, "kw-host-test", s, cryptsetup.OpenOptions{})
	if err != nil || !res.Legacy || !res.Rekeyed {
		t.Fatalf("%+v %v", res, err)
	}
	if err := h.Close(ctx, "kw-host-test"); err != nil {
		t.Fatal(err)
	}
}
