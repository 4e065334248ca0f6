package main

import (
	"errors"
	"os"
	"os/exec"

	"github.com/keywarden/keywarden/hostlib"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/luks"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
)

// Exit codes scripts can rely on (docs/HOST.md lists them too).
const (
	exitOK          = 0
	exitFailure     = 1  // anything not below
	exitUsage       = 2  // bad flags, arguments or configuration
	exitNotFound    = 3  // the secret does not exist (or has no payload)
	exitDenied      = 4  // credentials refused, or access to the secret forbidden
	exitWrongType   = 5  // the secret's type cannot encrypt a disk
	exitWrongPass   = 6  // no keyslot accepts the secret's passphrase
	exitNotLUKS     = 7  // not LUKS / not encrypted / corrupt header / image missing
	exitBusy        = 8  // device busy or mapping name taken
	exitUnavailable = 9  // key manager unreachable after retries and timeouts
	exitUnsupported = 10 // this host cannot: no device-mapper, tool missing, unsupported header
)

const exitCodesHelp = `Exit codes:
  0  success
  1  other failure
  2  usage error (flags, arguments, configuration)
  3  secret not found
  4  access denied (credentials refused or secret forbidden)
  5  secret type cannot encrypt a disk
  6  wrong passphrase (no keyslot accepts the secret)
  7  not LUKS, not encrypted, corrupt header, or no such device/image
  8  device busy or mapping name already in use
  9  key manager unavailable (after retries)
 10  not supported on this host (device-mapper, missing tool, header format)`

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func exitCode(err error) int {
	var ue usageError
	var ee *exec.Error
	is := func(targets ...error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), is(hostlib.ErrBadRef, cryptsetup.ErrInvalid, qemuimg.ErrInvalid):
		return exitUsage
	case is(hostlib.ErrNotFound):
		return exitNotFound
	case is(hostlib.ErrUnauthorized, hostlib.ErrForbidden):
		return exitDenied
	case is(hostlib.ErrWrongType):
		return exitWrongType
	case is(cryptsetup.ErrWrongPassphrase, qemuimg.ErrWrongPassphrase, luks.ErrWrongPassphrase):
		return exitWrongPass
	case is(cryptsetup.ErrNotLUKS, cryptsetup.ErrNoDevice, cryptsetup.ErrNotActive, qemuimg.ErrNotEncrypted,
		qemuimg.ErrNotFound, luks.ErrNotLUKS, luks.ErrCorrupt, os.ErrNotExist):
		return exitNotLUKS
	case is(cryptsetup.ErrBusy):
		return exitBusy
	case is(hostlib.ErrUnavailable):
		return exitUnavailable
	case is(cryptsetup.ErrNoDeviceMapper, cryptsetup.ErrNotInstalled, qemuimg.ErrNotInstalled, luks.ErrUnsupported),
		errors.As(err, &ee):
		return exitUnsupported
	}
	return exitFailure
}
