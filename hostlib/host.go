package hostlib

import (
	"context"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
)

// Host does the LUKS work for fetched secrets: it derives passphrases,
// chooses the PBKDF profile and runs cryptsetup and qemu-img.
type Host struct {
	Cryptsetup *cryptsetup.Cryptsetup
	QemuImg    *qemuimg.QemuImg
	// Profile is auto (per secret), fast or default.
	Profile string
	// NoRekey leaves a legacy keyslot in place after a fallback unlock.
	NoRekey bool
}

// NewHost uses cryptsetup and qemu-img from PATH and the auto profile.
func NewHost() *Host {
	return &Host{Cryptsetup: cryptsetup.New(""), QemuImg: qemuimg.New("")}
}

func (h *Host) profile(s *Secret) (Profile, error) { return ParseProfile(h.Profile, s) }

// Format writes a LUKS header whose passphrase derives from s. A zero
// o.PBKDF takes the profile's.
func (h *Host) Format(ctx context.Context, dev string, s *Secret, o cryptsetup.FormatOptions) error {
	p, err := h.profile(s)
	if err != nil {
		return err
	}
	pass, err := Passphrase(s)
	if err != nil {
		return err
	}
	defer crypto.Zero(pass)
	if o.PBKDF == (cryptsetup.PBKDF{}) {
		o.PBKDF = p.PBKDF
	}
	return h.Cryptsetup.Format(ctx, dev, pass, o)
}

// Close removes a mapping; closing one that is not open succeeds.
func (h *Host) Close(ctx context.Context, name string) error {
	return h.Cryptsetup.Close(ctx, name)
}

// OpenPlain maps a legacy plain dm-crypt disk. Nova's LVM ephemeral disks
// fed the hex passphrase to cryptsetup as the key file, so the same bytes
// are used here; the first KeySizeBits/8 of them form the key.
func (h *Host) OpenPlain(ctx context.Context, dev, name string, s *Secret, o cryptsetup.PlainOptions) error {
	pass, err := Passphrase(s)
	if err != nil {
		return err
	}
	defer crypto.Zero(pass)
	return h.Cryptsetup.OpenPlain(ctx, dev, name, pass, o)
}
