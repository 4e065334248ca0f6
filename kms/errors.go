package kms

import (
	"errors"
	"fmt"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// Kind classifies an error so each protocol adapter can translate it into its
// own form (HTTP status + Barbican body, KMIP result reason) without knowing
// which rule produced it.
type Kind int

const (
	KindInternal        Kind = iota // a fault of ours: store or crypto failure
	KindInvalid                     // the request is malformed or breaks a constraint
	KindNotFound                    // no such object (or expired / destroyed)
	KindForbidden                   // authenticated, but the policy says no
	KindConflict                    // the object's state forbids the change
	KindTooLarge                    // a payload or body over its limit
	KindUnauthenticated             // no valid identity
	KindUnavailable                 // a dependency (audit trail, Keystone, Vault) is down: try again later
	KindSingleValued                // an attribute that holds one value already has it
	KindNoAttribute                 // the object has no such attribute
	KindNoInstance                  // the attribute has no such instance
	KindWrongState                  // the object's lifecycle state forbids the operation
	KindReadOnly                    // the attribute cannot be changed (in the object's state)
	KindMultiValued                 // the attribute has several instances: one cannot be set as the whole
	KindUsage                       // the key's usage mask does not allow the operation
	KindSensitive                   // the key is sensitive: used by the server, never returned
	KindNotExtractable              // the key is not extractable: used by the server, never returned
	KindCryptoFailure               // the cryptographic operation failed (a bad tag, padding or signature form)
)

// Error is the error type of every Service method. Msg is safe to show to the
// caller: it never holds key material.
type Error struct {
	Kind Kind
	Msg  string
	// Object and Field name what a KindInvalid refusal is about (e.g. a
	// Container's "name"), when it is about one field of a request: an
	// adapter may word it its protocol's way.
	Object, Field string
	Err           error // the cause, for logs; never shown to callers
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func newErr(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Invalid, NotFound, ... build errors of one kind; adapters use them too, so
// that every refusal flows through one type.
func Invalid(format string, args ...any) error { return newErr(KindInvalid, format, args...) }

// InvalidField is Invalid about one field of one kind of request object.
func InvalidField(object, field, format string, args ...any) error {
	return &Error{Kind: KindInvalid, Msg: fmt.Sprintf(format, args...), Object: object, Field: field}
}
func NotFound(format string, args ...any) error  { return newErr(KindNotFound, format, args...) }
func Forbidden(format string, args ...any) error { return newErr(KindForbidden, format, args...) }
func Conflict(format string, args ...any) error  { return newErr(KindConflict, format, args...) }
func TooLarge(format string, args ...any) error  { return newErr(KindTooLarge, format, args...) }
func Unauthenticated(format string, args ...any) error {
	return newErr(KindUnauthenticated, format, args...)
}

// WrongState is a refusal because of the object's lifecycle state.
func WrongState(format string, args ...any) error { return newErr(KindWrongState, format, args...) }

// CryptoFailure is an operation that ran and failed on the data given.
func CryptoFailure(format string, args ...any) error {
	return newErr(KindCryptoFailure, format, args...)
}

// Unavailable is a refusal because something the request needs is down.
func Unavailable(format string, args ...any) error { return newErr(KindUnavailable, format, args...) }

// internal wraps a backend failure: callers see a generic message.
func internal(op string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return &Error{Kind: KindUnavailable, Msg: "the store is unavailable (" + op + "); try again", Err: err}
	}
	if errors.Is(err, store.ErrFull) {
		return &Error{Kind: KindUnavailable, Msg: "the store is full: the change was not made; try again later", Err: err}
	}
	if errors.Is(err, crypto.ErrMasterUnavailable) {
		return &Error{Kind: KindUnavailable, Msg: "the master key (Vault Transit) is unavailable (" + op + "); try again later", Err: err}
	}
	return &Error{Kind: KindInternal, Msg: "internal error during " + op, Err: err}
}

// KindOf returns the kind of err; errors that are not *Error are internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
