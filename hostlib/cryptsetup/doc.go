// Package cryptsetup drives the cryptsetup binary for LUKS1/LUKS2 and plain
// dm-crypt: format, open, close, resize, passphrase tests and keyslot
// changes.
//
// Passphrases reach cryptsetup on stdin (--key-file=-) or, when a second one
// is needed (add/change key), on an inherited pipe read as /dev/fd/3 — never
// in argv and never in a named file. Key files are read byte-exact, so a
// trailing newline would be part of the passphrase: none is ever added.
//
// Exit codes and messages (read under LC_ALL=C) become typed errors that
// callers test with errors.Is: ErrWrongPassphrase (exit 2), ErrNotLUKS,
// ErrBusy (exit 5), ErrNoDevice and ErrNotActive (exit 4), ErrOutOfMemory
// (exit 3), ErrNoDeviceMapper and ErrInvalid (exit 1).
package cryptsetup
