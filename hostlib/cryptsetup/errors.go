package cryptsetup

import (
	"errors"
	"fmt"
	"strings"
)

var (
	ErrWrongPassphrase = errors.New("wrong passphrase")
	ErrNotLUKS         = errors.New("not a LUKS device")
	ErrBusy            = errors.New("device busy or already exists")
	ErrNoDevice        = errors.New("device does not exist or access denied")
	ErrNotActive       = errors.New("mapping not active")
	ErrOutOfMemory     = errors.New("out of memory")
	ErrNoDeviceMapper  = errors.New("device-mapper unavailable")
	ErrInvalid         = errors.New("invalid parameters")
	ErrLastKeyslot     = errors.New("refusing to remove the last keyslot")
	ErrNotInstalled    = errors.New("cryptsetup not installed")
)

// Error is a failed cryptsetup run. Stderr never holds a secret: secrets
// travel on descriptors and cryptsetup does not echo them.
type Error struct {
	Op       string // cryptsetup action, e.g. luksOpen
	Target   string // device or mapping name
	ExitCode int
	Stderr   string
	Kind     error // one of the Err* values
}

func (e *Error) Error() string {
	msg := lastLine(e.Stderr)
	if msg == "" {
		return fmt.Sprintf("cryptsetup %s %s: %v (exit %d)", e.Op, e.Target, e.Kind, e.ExitCode)
	}
	return fmt.Sprintf("cryptsetup %s %s: %v (exit %d): %s", e.Op, e.Target, e.Kind, e.ExitCode, msg)
}

func (e *Error) Unwrap() error { return e.Kind }

// classify maps an exit code and stderr to a typed error. Messages come
// first where one exit code covers several causes (1 and 4).
func classify(code int, stderr string) error {
	switch {
	case strings.Contains(stderr, "Cannot initialize device-mapper"),
		strings.Contains(stderr, "dm_mod kernel module"):
		return ErrNoDeviceMapper
	case code == 2, strings.Contains(stderr, "No key available with this passphrase"):
		return ErrWrongPassphrase
	case strings.Contains(stderr, "is not a valid LUKS device"),
		strings.Contains(stderr, "not a valid LUKS"):
		return ErrNotLUKS
	case strings.Contains(stderr, "is not active"):
		return ErrNotActive
	case code == 5, strings.Contains(stderr, "already exists"), strings.Contains(stderr, "is in use"):
		return ErrBusy
	case code == 4, strings.Contains(stderr, "does not exist or access denied"):
		return ErrNoDevice
	case code == 3:
		return ErrOutOfMemory
	}
	return ErrInvalid
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
