package crypto

import (
	"context"
	"errors"
	"fmt"
)

// Record integrity: a store holds, beside each sealed payload, the fields
// that decide who may read it (project, owner, ACL, deletion policy, state).
// Whoever can write the store could edit those; a tag under the project's
// KEK, which only the master key unlocks, lets the server tell. The tag is
// GMAC (AES-GCM over no plaintext, the record as associated data) with a
// fresh random nonce, so one key tags any number of records safely.

// ErrTampered is CheckTag's answer for a record whose tag does not verify.
var ErrTampered = errors.New("crypto: record integrity check failed")

const tagDomain = "keywarden-record-tag-v1\x00"

// TagSize is the length of a tag: nonce and GCM tag.
const TagSize = 12 + 16

// Tag returns data's tag under the project's KEK (created on first use).
func (k *Keyring) Tag(ctx context.Context, project string, data []byte) ([]byte, error) {
	kek, err := k.projectKEK(ctx, project, true)
	if err != nil {
		return nil, err
	}
	// The KEK's GCM draws its own random nonce and puts it first.
	return kek.Seal(make([]byte, 0, TagSize), nil, nil, tagAAD(data)), nil
}

// CheckTag verifies data's tag; a project without a KEK has tagged nothing.
func (k *Keyring) CheckTag(ctx context.Context, project string, data, tag []byte) error {
	if len(tag) != TagSize {
		return fmt.Errorf("%w: no tag", ErrTampered)
	}
	kek, err := k.projectKEK(ctx, project, false)
	if errors.Is(err, ErrKEKNotFound) {
		return fmt.Errorf("%w: project %q has no key", ErrTampered, project)
	}
	if err != nil {
		return err
	}
	if _, err := kek.Open(nil, nil, tag, tagAAD(data)); err != nil {
		return ErrTampered
	}
	return nil
}

func tagAAD(data []byte) []byte {
	return append([]byte(tagDomain), data...)
}
