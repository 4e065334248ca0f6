package luks

import "errors"

var (
	// ErrNotLUKS means neither a LUKS header nor a qcow2 image with one was found.
	ErrNotLUKS = errors.New("luks: no LUKS header")
	// ErrWrongPassphrase means no active keyslot accepts the passphrase.
	ErrWrongPassphrase = errors.New("luks: no keyslot accepts this passphrase")
	// ErrUnsupported means the header uses a cipher, mode, hash or KDF this
	// package does not implement; the passphrase may still be right.
	ErrUnsupported = errors.New("luks: unsupported header parameters")
	// ErrCorrupt means the header is inconsistent (bad checksum, bounds).
	ErrCorrupt = errors.New("luks: corrupt header")
)
