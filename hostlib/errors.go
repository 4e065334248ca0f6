package hostlib

import "errors"

// Errors about the secret itself; fetchers wrap them, so errors.Is works
// whatever protocol fetched the secret.
var (
	ErrNotFound     = errors.New("secret not found")
	ErrForbidden    = errors.New("access to the secret is forbidden")
	ErrUnauthorized = errors.New("key manager refused the host's credentials")
	ErrWrongType    = errors.New("secret type cannot encrypt a disk")
	ErrUnavailable  = errors.New("key manager unavailable")
	ErrBadRef       = errors.New("invalid secret reference")
)
