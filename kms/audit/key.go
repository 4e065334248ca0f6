package audit

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/keywarden/keywarden/crypto"
)

// KeySize is the size of an audit key file: 32 raw random bytes.
const KeySize = 32

// KeyID names a key in the log without revealing it: the first 8 bytes of
// a domain-separated SHA-256, in hex.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("keywarden/v1/audit-key-id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// LoadOrCreateKey loads the audit key file, or creates it (mode 0600) when
// it does not exist; see crypto.LoadOrCreateKeyFile.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	return crypto.LoadOrCreateKeyFile(path, "audit key", KeySize)
}

// LoadKey reads an existing key file; it never creates one. It refuses a
// file open to group or others, or not exactly KeySize bytes.
func LoadKey(path string) ([]byte, error) {
	return crypto.ReadKeyFile(path, "audit key", KeySize)
}
