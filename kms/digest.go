package kms

import (
	"crypto/sha256"
	"encoding/pem"
)

// MaterialDigest is the server's SHA-256 of an object's material (KMIP's
// Digest attribute), computed once when the material is sealed.
type MaterialDigest struct {
	SHA256 []byte `json:"sha256" cbor:"1,keyasint"`
	// PEMType is the PEM block type the material was stored in ("PRIVATE
	// KEY", "CERTIFICATE" …): the DER inside was hashed, since that DER is
	// the material a KMIP client gets. Empty: the bytes themselves.
	PEMType string `json:"pem_type,omitempty" cbor:"2,keyasint,omitempty"`
}

// digestOf returns the digest of payload for an object of type t, or nil
// for the types that get none. Keys and certificates have full-entropy or
// public material. Passphrases and opaque data may be guessable; a plain
// hash of them, shown to whoever may read metadata, would let that reader
// try guesses offline, so they get no digest.
func digestOf(t SecretType, payload []byte) *MaterialDigest {
	switch t {
	case Symmetric, Private, Public, Certificate:
	default:
		return nil
	}
	d := &MaterialDigest{}
	material := payload
	if t != Symmetric {
		if blk, _ := pem.Decode(payload); blk != nil {
			material, d.PEMType = blk.Bytes, blk.Type
		}
	}
	sum := sha256.Sum256(material)
	d.SHA256 = sum[:]
	return d
}

func (d *MaterialDigest) clone() *MaterialDigest {
	if d == nil {
		return nil
	}
	c := *d
	c.SHA256 = append([]byte(nil), d.SHA256...)
	return &c
}
