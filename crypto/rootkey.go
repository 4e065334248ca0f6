package crypto

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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

// LoadOrCreateRootKey creates the file (mode 0600, parent dir created 0700,
// written via temp file + fsync + link) on first use and loads it afterwards.
// It refuses a file readable or writable by group/other, and a file of the
// wrong size/format. created reports whether it was just made.
//
// The temp file is published with a hard link rather than a rename: like a
// rename it is atomic, but it never replaces an existing file, so two
// processes racing on first start cannot end up holding different keys.
func LoadOrCreateRootKey(path string) (key *RootKey, created bool, err error) {
	key, err = LoadRootKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("crypto: root key directory: %w", err)
	}
	raw := make([]byte, RootKeySize)
	rand.Read(raw)
	if err := writeNewFile(path, raw); err != nil {
		Zero(raw)
		if errors.Is(err, fs.ErrExist) {
			// Another process created it between our load and our link: use theirs.
			key, err = LoadRootKey(path)
			return key, false, err
		}
		return nil, false, err
	}
	return newRootKey(raw), true, nil
}

// writeNewFile durably writes data to path, failing with fs.ErrExist if path
// already exists. A reader never sees a partial file.
func writeNewFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".rootkey-*.tmp") // created 0600
	if err != nil {
		return fmt.Errorf("crypto: creating root key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("crypto: writing root key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("crypto: creating root key: %w", err)
	}
	// Unlink before the directory sync, so a crash leaves no second name.
	os.Remove(tmp.Name())
	// The new directory entry must be durable before any KEK is wrapped with it.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("crypto: syncing root key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("crypto: syncing root key directory: %w", err)
	}
	return nil
}

// LoadRootKey loads an existing root key file; it never creates one. A
// missing file gives an error matching fs.ErrNotExist.
func LoadRootKey(path string) (*RootKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: root key: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checks apply to what is read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("crypto: root key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("crypto: root key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("crypto: root key file %s has mode %#o: it must not be readable or writable by group or others (chmod 600 %s)", path, perm, path)
	}
	if fi.Size() != RootKeySize {
		return nil, fmt.Errorf("crypto: root key file %s is %d bytes, want exactly %d raw bytes", path, fi.Size(), RootKeySize)
	}
	buf := make([]byte, RootKeySize+1) // one spare byte detects a file grown since Stat
	n, err := io.ReadFull(f, buf)
	if n != RootKeySize || err != io.ErrUnexpectedEOF {
		Zero(buf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("crypto: root key: %w", err)
		}
		return nil, fmt.Errorf("crypto: root key file %s changed size while being read", path)
	}
	raw := buf[:RootKeySize:RootKeySize]
	if allZero(raw) {
		return nil, fmt.Errorf("crypto: root key file %s holds an all-zero key", path)
	}
	return newRootKey(raw), nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
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
