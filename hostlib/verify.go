package hostlib

import (
	"errors"
	"os"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib/luks"
)

// VerifyResult is what the pure-Go check found.
type VerifyResult struct {
	Header *luks.Header `json:"header"`
	Slot   int          `json:"slot"`
	Legacy bool         `json:"legacy"` // only the legacy passphrase matched
}

// Verify checks the secret against the LUKS header of a file, block device
// or qcow2 image in pure Go: no cryptsetup, device-mapper or root needed.
// It only reads; a legacy match is reported, not re-keyed.
func Verify(path string, s *Secret) (VerifyResult, error) {
	res := VerifyResult{Slot: -1}
	pass, err := Passphrase(s)
	if err != nil {
		return res, err
	}
	defer crypto.Zero(pass)
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	if res.Header, err = luks.Read(f); err != nil {
		return res, err
	}
	if res.Slot, err = res.Header.Verify(pass); !errors.Is(err, luks.ErrWrongPassphrase) {
		return res, err
	}
	legacy, ok := LegacyPassphrase(s)
	if !ok {
		return res, err
	}
	defer crypto.Zero(legacy)
	if slot, lerr := res.Header.Verify(legacy); lerr == nil {
		res.Slot, res.Legacy = slot, true
		return res, nil
	}
	return res, err
}
