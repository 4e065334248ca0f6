package crypto

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
)

// MasterKey wraps project KEKs. Local root key file now; Vault Transit later.
type MasterKey interface {
	ID() string // stable identifier, recorded next to each wrapped KEK
	Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// RootKeySize is the size of a root key file: a raw 32-byte AES-256 key.
const RootKeySize = 32

var errRootKeyClosed = errors.New("crypto: root key is closed")

// RootKey is the local master key: 32 random bytes in a file.
type RootKey struct {
	id string
	// mu keeps Close from zeroing the key under a running Wrap or Unwrap.
	mu  sync.RWMutex
	key []byte // nil after Close
}

var _ MasterKey = (*RootKey)(nil)

// LoadOrCreateRootKey creates the root key file on first use and loads it
// afterwards, with LoadOrCreateKeyFile's checks. created reports whether it
// was just made.
func LoadOrCreateRootKey(path string) (key *RootKey, created bool, err error) {
	raw, created, err := LoadOrCreateKeyFile(path, "root key", RootKeySize)
	if err != nil {
		return nil, false, err
	}
	return newRootKey(raw), created, nil
}

// LoadRootKey loads an existing root key file; it never creates one. A
// missing file gives an error matching fs.ErrNotExist.
func LoadRootKey(path string) (*RootKey, error) {
	raw, err := ReadKeyFile(path, "root key", RootKeySize)
	if err != nil {
		return nil, err
	}
	return newRootKey(raw), nil
}

func newRootKey(raw []byte) *RootKey {
	// Domain-separated so the fingerprint is useless for anything but naming.
	h := sha256.New()
	h.Write([]byte("keywarden/v1/root-key-id\x00"))
	h.Write(raw)
	return &RootKey{id: "local:" + hex.EncodeToString(h.Sum(nil)[:8]), key: raw}
}

// ID returns "local:" and a 64-bit fingerprint of the key; never the key.
func (r *RootKey) ID() string { return r.id }

// Wrap seals plaintext with AES-256-GCM under the root key; the random 12-byte
// nonce is prefixed to the result.
func (r *RootKey) Wrap(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, err := r.aead()
	if err != nil {
		return nil, err
	}
	return a.Seal(nil, nil, plaintext, aad), nil
}

// Unwrap opens what Wrap produced with the same aad.
func (r *RootKey) Unwrap(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, err := r.aead()
	if err != nil {
		return nil, err
	}
	out, err := a.Open(nil, nil, wrapped, aad)
	if err != nil {
		return nil, fmt.Errorf("crypto: data does not unwrap under master key %s", r.id)
	}
	return out, nil
}

// aead is built per call: wrapping is rare, and not caching it means Close
// leaves no copy of the key schedule behind. Callers hold r.mu.
func (r *RootKey) aead() (cipher.AEAD, error) {
	if r.key == nil {
		return nil, errRootKeyClosed
	}
	return newAEAD(r.key)
}

// Close zeroes the key; Wrap and Unwrap fail afterwards.
func (r *RootKey) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	Zero(r.key)
	r.key = nil
}

// newAEAD returns AES-256-GCM with random nonces prefixed to the ciphertext.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("crypto: AES-256 key must be 32 bytes, got %d", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(b)
}
