// Package consumers holds the rules about who uses a secret: consumer
// identity and validation, the deletion guard, deletion policies, the image
// metadata names of the encrypted-image specification, what a clone carries
// over, and when an unused secret is an orphan.
//
// It knows nothing of storage or of kms: kms applies these rules inside its
// transactions, so a rule here is the same for every protocol.
package consumers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Consumer is a service resource that uses a secret (a volume, an image, an
// instance's disk), named as Barbican's secret consumers API names it.
type Consumer struct {
	Service      string    `json:"service"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id"`
	Created      time.Time `json:"created"`
	// Project is the project that registered the consumer: it may remove
	// it even when it does not own the secret (Barbican's rule).
	Project string `json:"project,omitempty"`
}

// Same reports whether c and o name the same resource; Created and Project
// are not part of a consumer's identity, so adding it twice is one consumer.
func (c Consumer) Same(o Consumer) bool {
	return c.Service == o.Service && c.ResourceType == o.ResourceType && c.ResourceID == o.ResourceID
}

func (c Consumer) String() string {
	return c.Service + "/" + c.ResourceType + "/" + c.ResourceID
}

// MaxField is the longest service, resource type or resource id accepted
// (Barbican's column width).
const MaxField = 255

// MaxPerSecret bounds the consumers of one secret: they live in the secret's
// record, which must stay small.
const MaxPerSecret = 1000

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks the three fields a caller names a consumer with.
func Validate(c Consumer) error {
	for _, f := range []struct{ name, v string }{
		{"service", c.Service}, {"resource_type", c.ResourceType}, {"resource_id", c.ResourceID},
	} {
		if f.v == "" {
			return invalid("consumer %s is required", f.name)
		}
		if len(f.v) > MaxField {
			return invalid("consumer %s is longer than %d characters", f.name, MaxField)
		}
		// Names end up in error messages, logs and audit lines.
		if strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			return invalid("consumer %s contains control characters", f.name)
		}
	}
	return nil
}

// Index returns the position of c in cs, or -1.
func Index(cs []Consumer, c Consumer) int {
	return slices.IndexFunc(cs, c.Same)
}

// Add returns cs with c appended unless already present (idempotent add);
// added says whether it was new. cs itself is never modified.
func Add(cs []Consumer, c Consumer) (out []Consumer, added bool, err error) {
	if Index(cs, c) >= 0 {
		return cs, false, nil
	}
	if len(cs) >= MaxPerSecret {
		return cs, false, invalid("a secret can have at most %d consumers", MaxPerSecret)
	}
	out = make([]Consumer, len(cs), len(cs)+1)
	copy(out, cs)
	return append(out, c), true, nil
}

// MayRemove is Barbican's ownership rule for removing a consumer: the
// project that registered it, or the secret's own project.
func MayRemove(registered Consumer, callerProject, secretProject string) bool {
	return callerProject == secretProject || (registered.Project != "" && registered.Project == callerProject)
}

// Remove returns cs without c (idempotent remove); removed says whether it
// was there. cs itself is never modified.
func Remove(cs []Consumer, c Consumer) (out []Consumer, removed bool) {
	i := Index(cs, c)
	if i < 0 {
		return cs, false
	}
	out = make([]Consumer, 0, len(cs)-1)
	out = append(out, cs[:i]...)
	return append(out, cs[i+1:]...), true
}

// Page returns cs[offset:offset+limit], clamped.
func Page(cs []Consumer, offset, limit int) []Consumer {
	offset = min(max(offset, 0), len(cs))
	end := len(cs)
	if limit > 0 {
		end = min(offset+limit, len(cs))
	}
	return cs[offset:end]
}

// describeMax caps how many consumers an error message names.
const describeMax = 10

// Describe names the consumers for a human: "image/image/1, volume/volume/2",
// at most a few of them and a count of the rest.
func Describe(cs []Consumer) string {
	parts := make([]string, 0, min(len(cs), describeMax)+1)
	for i, c := range cs {
		if i == describeMax {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-describeMax))
			break
		}
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

// Guard outcomes for deleting a secret.
var (
	// ErrInUse: the secret has consumers and the delete was not forced.
	ErrInUse = errors.New("secret in use")
	// ErrForceDenied: a forced delete by a caller who may not force it.
	ErrForceDenied = errors.New("force not allowed")
)

// CheckDelete is the deletion guard: a secret with consumers is deleted only
// when forced by a caller allowed to force (a project admin).
func CheckDelete(cs []Consumer, force, mayForce bool) error {
	switch {
	case len(cs) == 0:
		return nil
	case !force:
		return fmt.Errorf("%w: Secret has consumers and cannot be deleted: %s; remove them first or delete with force", ErrInUse, Describe(cs))
	case !mayForce:
		return fmt.Errorf("%w: only a project admin can force the deletion of a secret in use", ErrForceDenied)
	}
	return nil
}
