package hostlib

import (
	"bytes"
	"fmt"

	"github.com/keywarden/keywarden/crypto"
)

// Passphrase turns a secret into the LUKS passphrase, as Nova, Cinder and
// os-brick do: a passphrase secret is used byte-exact; a symmetric (or
// opaque) key becomes the lowercase hex of its bytes. The caller zeroes the
// result with crypto.Zero.
func Passphrase(s *Secret) ([]byte, error) {
	if err := s.Usable(); err != nil {
		return nil, err
	}
	if s.Len() == 0 {
		return nil, fmt.Errorf("%w: %s has no material", ErrWrongType, s.ID)
	}
	if s.Type == TypePassphrase {
		return bytes.Clone(s.Material()), nil
	}
	return crypto.HexPassphrase(s.Material()), nil
}

// LegacyPassphrase is the mangled hex older Cinder/os-brick releases
// formatted volumes with (each byte's leading zero dropped). ok is false
// when there is no distinct legacy form: passphrase secrets, or keys with
// no byte below 0x10.
func LegacyPassphrase(s *Secret) (pass []byte, ok bool) {
	if s.Type == TypePassphrase || s.Usable() != nil || s.Len() == 0 {
		return nil, false
	}
	if !hasLowByte(s.Material()) {
		return nil, false
	}
	return crypto.LegacyHexPassphrase(s.Material()), true
}

func hasLowByte(b []byte) bool {
	for _, c := range b {
		if c < 0x10 {
			return true
		}
	}
	return false
}
