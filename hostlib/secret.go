package hostlib

import (
	"fmt"

	"github.com/keywarden/keywarden/crypto"
	"golang.org/x/sys/unix"
)

// Secret types as the key manager names them (Barbican secret_type).
const (
	TypeSymmetric  = "symmetric"
	TypePassphrase = "passphrase"
	TypeOpaque     = "opaque"
)

// Secret is a fetched disk secret. Its material lives in one buffer that
// Close zeroes; it is locked in RAM (best effort) so it is not swapped out,
// and it never prints: String and MarshalJSON show metadata only.
type Secret struct {
	ID        string
	Type      string
	Algorithm string
	BitLength int

	material []byte
	locked   bool
}

// NewSecret takes ownership of material: the caller must not keep or reuse it.
func NewSecret(id, typ string, material []byte) *Secret {
	s := &Secret{ID: id, Type: typ, material: material}
	if len(material) > 0 && unix.Mlock(material) == nil {
		s.locked = true
	}
	return s
}

// Material is the secret's bytes, valid until Close.
func (s *Secret) Material() []byte { return s.material }

// Len is the material's length in bytes.
func (s *Secret) Len() int { return len(s.material) }

// Close zeroes the material. Safe to call more than once.
func (s *Secret) Close() {
	if s == nil || s.material == nil {
		return
	}
	crypto.Zero(s.material)
	if s.locked {
		unix.Munlock(s.material)
	}
	s.material = nil
}

// Usable reports whether the secret's type can become a LUKS passphrase.
func (s *Secret) Usable() error {
	switch s.Type {
	case TypeSymmetric, TypePassphrase, TypeOpaque:
		return nil
	}
	return fmt.Errorf("%w: %s is a %q secret", ErrWrongType, s.ID, s.Type)
}

func (s *Secret) String() string {
	return fmt.Sprintf("secret %s (%s, %d bytes)", s.ID, s.Type, len(s.material))
}

// GoString keeps %#v from dumping the material.
func (s *Secret) GoString() string { return s.String() }

// MarshalJSON shows metadata only.
func (s *Secret) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"id":%q,"type":%q,"algorithm":%q,"bit_length":%d,"length":%d}`,
		s.ID, s.Type, s.Algorithm, s.BitLength, len(s.material)), nil
}
