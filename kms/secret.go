package kms

import (
	"maps"
	"slices"
	"time"

	"github.com/keywarden/keywarden/consumers"
)

// SecretType is the kind of material; the same object is a Barbican
// secret_type and a KMIP object type.
type SecretType string

const (
	Symmetric   SecretType = "symmetric"   // KMIP Symmetric Key
	Passphrase  SecretType = "passphrase"  // KMIP Secret Data (Password)
	Opaque      SecretType = "opaque"      // KMIP Opaque Object
	Private     SecretType = "private"     // KMIP Private Key
	Public      SecretType = "public"      // KMIP Public Key
	Certificate SecretType = "certificate" // KMIP Certificate
)

// Valid reports whether t is a known type.
func (t SecretType) Valid() bool {
	switch t {
	case Symmetric, Passphrase, Opaque, Private, Public, Certificate:
		return true
	}
	return false
}

// State is the KMIP lifecycle state; Barbican shows every live secret ACTIVE.
type State string

const (
	PreActive   State = "pre-active"
	Active      State = "active"
	Deactivated State = "deactivated"
	Compromised State = "compromised"
	Destroyed   State = "destroyed"
)

// DeletionPolicy says what happens to a secret when its users go away; the
// rules live in package consumers.
type DeletionPolicy = consumers.Policy

const (
	// Retain keeps the secret until someone deletes it (Barbican behaviour).
	Retain = consumers.Retain
	// OnLastConsumer destroys the secret when its last consumer is removed
	// (an image's os_encrypt_key_deletion_policy=on_image_deletion).
	OnLastConsumer = consumers.OnLastConsumer
)

// Consumer is a service resource that uses a secret (a volume, an image, an
// instance's disk). A secret with consumers is not deleted unless forced.
type Consumer = consumers.Consumer

// ACL is the read access list of a secret. ProjectAccess false makes the
// secret private to its creator, admins and the listed users.
type ACL struct {
	Users []string `json:"users,omitempty"`
	// Source is the identity source the users were named in (the setter's
	// Identity.Source): a user of another source never matches.
	Source        string    `json:"source,omitempty"`
	ProjectAccess bool      `json:"project_access"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
}

// DiskEncryption records how a disk uses its secret (the source documents'
// encryption_format / encryption_options).
type DiskEncryption struct {
	Format  string `json:"format,omitempty"` // luks1, luks2, plain
	Cipher  string `json:"cipher,omitempty"` // e.g. aes-xts-plain64
	KeySize int    `json:"key_size,omitempty"`
}

// Secret is the one object model behind both protocols.
type Secret struct {
	ID      string `json:"id" cbor:"1,keyasint,omitempty"`
	Project string `json:"project" cbor:"2,keyasint,omitempty"`
	Creator string `json:"creator" cbor:"3,keyasint,omitempty"`

	// CreatorSource is the creator's identity source (Identity.Source): a
	// creator of the same name from another source is not the owner.
	// Empty on objects made before sources were recorded.
	CreatorSource string `json:"creator_source,omitempty" cbor:"4,keyasint,omitempty"`

	Name        string     `json:"name,omitempty" cbor:"5,keyasint,omitempty"`
	Type        SecretType `json:"type" cbor:"6,keyasint,omitempty"`
	Algorithm   string     `json:"algorithm,omitempty" cbor:"7,keyasint,omitempty"`
	BitLength   int        `json:"bit_length,omitempty" cbor:"8,keyasint,omitempty"`
	Mode        string     `json:"mode,omitempty" cbor:"9,keyasint,omitempty"`
	ContentType string     `json:"content_type,omitempty" cbor:"10,keyasint,omitempty"` // of the payload, once it has one
	Expiration  *time.Time `json:"expiration,omitempty" cbor:"11,keyasint,omitempty"`
	State       State      `json:"state" cbor:"12,keyasint,omitempty"`
	Created     time.Time  `json:"created" cbor:"13,keyasint,omitempty"`
	Updated     time.Time  `json:"updated" cbor:"14,keyasint,omitempty"`

	// KMIP lifecycle dates.
	ActivationDate   *time.Time `json:"activation_date,omitempty" cbor:"15,keyasint,omitempty"`
	DeactivationDate *time.Time `json:"deactivation_date,omitempty" cbor:"16,keyasint,omitempty"`
	CompromiseDate   *time.Time `json:"compromise_date,omitempty" cbor:"17,keyasint,omitempty"`
	DestroyDate      *time.Time `json:"destroy_date,omitempty" cbor:"18,keyasint,omitempty"`

	Metadata       map[string]string `json:"metadata,omitempty" cbor:"19,keyasint,omitempty"`   // Barbican user metadata
	Attributes     map[string]string `json:"attributes,omitempty" cbor:"20,keyasint,omitempty"` // KMIP attributes with no field here (object group, x-custom, usage mask)
	ACL            *ACL              `json:"acl,omitempty" cbor:"21,keyasint,omitempty"`
	Consumers      []Consumer        `json:"consumers,omitempty" cbor:"22,keyasint,omitempty"`
	DeletionPolicy DeletionPolicy    `json:"deletion_policy,omitempty" cbor:"23,keyasint,omitempty"`
	ClonedFrom     string            `json:"cloned_from,omitempty" cbor:"24,keyasint,omitempty"`
	Encryption     *DiskEncryption   `json:"encryption,omitempty" cbor:"25,keyasint,omitempty"`
	HasPayload     bool              `json:"has_payload" cbor:"26,keyasint,omitempty"`
	// KeyPassphrase is the passphrase secret of a private key ordered with
	// a pass_phrase: REST serves the key encrypted with it (keypassphrase.go).
	KeyPassphrase string `json:"key_passphrase,omitempty" cbor:"29,keyasint,omitempty"`

	// Digest is the SHA-256 of the material (see digestOf); nil before a
	// payload, for types that get none, and on records made before it.
	Digest *MaterialDigest `json:"digest,omitempty" cbor:"27,keyasint,omitempty"`
	// Generated: the server made the material with its random generator
	// (KMIP's Random Number Generator attribute describes that generator).
	Generated bool `json:"generated,omitempty" cbor:"28,keyasint,omitempty"`

	// Recorded when the object is made (KMIP 1.4 §3.49-3.50; Sensitive
	// only rises and Extractable only falls, so these stay true once
	// set): Sensitive then, not Extractable then. False on older records.
	AlwaysSensitive  bool `json:"always_sensitive,omitempty" cbor:"30,keyasint,omitempty"`
	NeverExtractable bool `json:"never_extractable,omitempty" cbor:"31,keyasint,omitempty"`
	// Fresh (KMIP §3.48): not yet returned by a Get; the first Get clears
	// it (clearFresh). False on older records.
	Fresh bool `json:"fresh,omitempty" cbor:"32,keyasint,omitempty"`
	// Revocation is what the last Revoke said (KMIP Revocation Reason,
	// Compromise Occurrence Date); nil before any.
	Revocation *Revocation `json:"revocation,omitempty" cbor:"33,keyasint,omitempty"`
	// UsageLimits bound what the key encrypts and decrypts (usagelimits.go).
	UsageLimits *UsageLimits `json:"usage_limits,omitempty" cbor:"34,keyasint,omitempty"`
}

// Revocation is why an object was revoked: KMIP's Revocation Reason Code
// (1.4 §3.31: 1 Unspecified … 6 Cessation of Operation, 7 Privilege
// Withdrawn), its optional message, and when a compromise occurred.
type Revocation struct {
	Code     int        `json:"code" cbor:"1,keyasint,omitempty"`
	Message  string     `json:"message,omitempty" cbor:"2,keyasint,omitempty"`
	Occurred *time.Time `json:"occurred,omitempty" cbor:"3,keyasint,omitempty"`
}

// Expired reports whether the secret's expiration has passed at now.
func (s *Secret) Expired(now time.Time) bool {
	return s.Expiration != nil && !s.Expiration.After(now)
}

// Clone returns a deep copy, so callers can never alias the service's state.
func (s *Secret) Clone() *Secret {
	c := *s
	c.Metadata = maps.Clone(s.Metadata)
	c.Attributes = maps.Clone(s.Attributes)
	c.Consumers = slices.Clone(s.Consumers)
	if s.ACL != nil {
		a := *s.ACL
		a.Users = slices.Clone(s.ACL.Users)
		c.ACL = &a
	}
	if s.Encryption != nil {
		e := *s.Encryption
		c.Encryption = &e
	}
	c.Digest = s.Digest.clone()
	return &c
}
