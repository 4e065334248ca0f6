package qemuimg

import (
	"errors"
	"fmt"
	"strings"
)

var (
	ErrWrongPassphrase = errors.New("wrong passphrase")
	ErrNotFound        = errors.New("image not found")
	ErrNotEncrypted    = errors.New("image is not LUKS-encrypted")
	ErrInvalid         = errors.New("invalid parameters")
	ErrFailed          = errors.New("qemu-img failed")
	ErrNotInstalled    = errors.New("qemu-img not installed")
)

// Error is a failed qemu-img run; Stderr holds no secret (they travel on
// descriptors and qemu-img does not print them).
type Error struct {
	Op       string
	Target   string
	ExitCode int
	Stderr   string
	Kind     error
}

func (e *Error) Error() string {
	return fmt.Sprintf("qemu-img %s %s: %v (exit %d): %s", e.Op, e.Target, e.Kind, e.ExitCode, strings.TrimSpace(e.Stderr))
}

func (e *Error) Unwrap() error { return e.Kind }

func classify(stderr string) error {
	switch {
	case strings.Contains(stderr, "Invalid password"), strings.Contains(stderr, "cannot unlock any keyslot"):
		return ErrWrongPassphrase
	case strings.Contains(stderr, "No such file or directory"):
		return ErrNotFound
	case strings.Contains(stderr, "Invalid parameter"), strings.Contains(stderr, "Parameter '"),
		strings.Contains(stderr, "Invalid option"), strings.Contains(stderr, "invalid option"):
		return ErrInvalid
	}
	return ErrFailed
}

// transient reports a failure worth one retry: QEMU's PBKDF benchmark
// occasionally measures zero CPU time on a loaded host and gives up.
func transient(stderr string) bool {
	return strings.Contains(stderr, "Unable to get accurate CPU usage")
}
