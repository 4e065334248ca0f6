package hostlib

import (
	"context"
	"errors"
	"fmt"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
)

// UnlockResult tells how a device was unlocked.
type UnlockResult struct {
	// Legacy: only the legacy mangled-hex passphrase opened the device.
	Legacy bool `json:"legacy"`
	// Rekeyed: the correct passphrase was added and the legacy one removed,
	// so the next unlock is clean.
	Rekeyed bool `json:"rekeyed"`
	// RekeyErr: re-keying failed; the device is unlocked all the same.
	RekeyErr error `json:"-"`
}

// Open maps dev to /dev/mapper/name (needs device-mapper), falling back to
// the legacy passphrase and re-keying as described on TestUnlock.
func (h *Host) Open(ctx context.Context, dev, name string, s *Secret, o cryptsetup.OpenOptions) (UnlockResult, error) {
	return h.unlock(ctx, dev, s, func(pass []byte) error {
		return h.Cryptsetup.Open(ctx, dev, name, pass, o)
	})
}

// TestUnlock checks the secret against dev without a mapping, so it works
// without device-mapper. When cryptsetup refuses the passphrase (exit 2)
// and the secret has a legacy form, that form is tried; if it opens, the
// correct passphrase is added, checked, and the legacy one removed.
func (h *Host) TestUnlock(ctx context.Context, dev string, s *Secret) (UnlockResult, error) {
	return h.unlock(ctx, dev, s, func(pass []byte) error {
		return h.Cryptsetup.TestPassphrase(ctx, dev, pass)
	})
}

func (h *Host) unlock(ctx context.Context, dev string, s *Secret, try func([]byte) error) (UnlockResult, error) {
	var res UnlockResult
	p, err := h.profile(s)
	if err != nil {
		return res, err
	}
	pass, err := Passphrase(s)
	if err != nil {
		return res, err
	}
	defer crypto.Zero(pass)
	err = try(pass)
	if !errors.Is(err, cryptsetup.ErrWrongPassphrase) {
		return res, err
	}
	legacy, ok := LegacyPassphrase(s)
	if !ok {
		return res, err
	}
	defer crypto.Zero(legacy)
	if try(legacy) != nil {
		return res, err // report the refusal of the correct form
	}
	res.Legacy = true
	if !h.NoRekey {
		res.RekeyErr = h.rekey(ctx, dev, legacy, pass, p)
		res.Rekeyed = res.RekeyErr == nil
	}
	return res, nil
}

// rekey replaces the legacy keyslot. The new slot is added and proven
// before the old one goes, so an interruption never locks the disk out.
func (h *Host) rekey(ctx context.Context, dev string, legacy, pass []byte, p Profile) error {
	if err := h.Cryptsetup.AddKey(ctx, dev, legacy, pass, p.PBKDF, -1); err != nil {
		return fmt.Errorf("re-key: add correct passphrase: %w", err)
	}
	if err := h.Cryptsetup.TestPassphrase(ctx, dev, pass); err != nil {
		return fmt.Errorf("re-key: new keyslot does not open: %w", err)
	}
	if err := h.Cryptsetup.RemoveKey(ctx, dev, legacy); err != nil {
		return fmt.Errorf("re-key: remove legacy passphrase: %w", err)
	}
	return nil
}
