package luks

import (
	"fmt"
	"hash"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/pbkdf2"
)

// KDF describes how a keyslot turns a passphrase into its key.
type KDF struct {
	Type       string `json:"type"`                 // pbkdf2, argon2i, argon2id
	Hash       string `json:"hash,omitempty"`       // pbkdf2 only
	Iterations int    `json:"iterations,omitempty"` // pbkdf2 only
	Time       int    `json:"time,omitempty"`       // argon2 only
	MemoryKiB  int    `json:"memory_kib,omitempty"` // argon2 only
	Threads    int    `json:"threads,omitempty"`    // argon2 only
	Salt       []byte `json:"-"`
}

// maxArgonMemoryKiB is cryptsetup's own ceiling (4 GiB); a header asking for
// more is hostile or broken, and honouring it would exhaust the host.
const maxArgonMemoryKiB = 4 * 1024 * 1024

func (k KDF) derive(pass []byte, keyLen int) ([]byte, error) {
	switch k.Type {
	case "pbkdf2":
		h, err := hashFunc(k.Hash)
		if err != nil {
			return nil, err
		}
		if k.Iterations < 1 {
			return nil, fmt.Errorf("%w: pbkdf2 iterations %d", ErrCorrupt, k.Iterations)
		}
		return pbkdf2Key(pass, k.Salt, k.Iterations, keyLen, h)
	case "argon2i", "argon2id":
		if k.Time < 1 || k.Threads < 1 || k.Threads > 255 || k.MemoryKiB < 8*k.Threads || k.MemoryKiB > maxArgonMemoryKiB {
			return nil, fmt.Errorf("%w: argon2 time=%d memory=%d threads=%d", ErrCorrupt, k.Time, k.MemoryKiB, k.Threads)
		}
		if k.Type == "argon2i" {
			return argon2.Key(pass, k.Salt, uint32(k.Time), uint32(k.MemoryKiB), uint8(k.Threads), uint32(keyLen)), nil
		}
		return argon2.IDKey(pass, k.Salt, uint32(k.Time), uint32(k.MemoryKiB), uint8(k.Threads), uint32(keyLen)), nil
	}
	return nil, fmt.Errorf("%w: kdf %q", ErrUnsupported, k.Type)
}

// pbkdf2Key turns x/crypto's panic (FIPS-only mode refusing a hash) into an
// error: a verifier must not bring the host agent down.
func pbkdf2Key(pass, salt []byte, iter, keyLen int, h func() hash.Hash) (key []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: pbkdf2: %v", ErrUnsupported, r)
		}
	}()
	return pbkdf2.Key(pass, salt, iter, keyLen, h), nil
}
