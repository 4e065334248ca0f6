package kms

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"

	"github.com/keywarden/keywarden/crypto"
)

// MaterialDigest is the server's SHA-256 of an object's material (KMIP's
// Digest attribute), computed once when the material is sealed.
type MaterialDigest struct {
	SHA256 []byte `json:"sha256" cbor:"1,keyasint"`
	// PEMType is the PEM block type of what was hashed ("PRIVATE KEY",
	// "CERTIFICATE" …): the DER a KMIP Get answers by default — the stored
	// DER, except RSA keys, hashed in PKCS#1 ("RSA PRIVATE KEY", "RSA
	// PUBLIC KEY"). Empty: the bytes themselves.
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
		if der, typ, ok := rsaPKCS1(t, material, d.PEMType); ok {
			defer crypto.Zero(der)
			material, d.PEMType = der, typ
		}
	}
	sum := sha256.Sum256(material)
	d.SHA256 = sum[:]
	return d
}

// rsaPKCS1 re-encodes an RSA key stored as PKCS#8 or SubjectPublicKeyInfo
// (in PEM, or bare DER) in PKCS#1: the form a KMIP Get answers by default
// for RSA keys, so the Digest is of the material a client gets.
func rsaPKCS1(t SecretType, der []byte, pemType string) ([]byte, string, bool) {
	if pemType == "" && t == Private {
		pemType = "PRIVATE KEY"
	} else if pemType == "" {
		pemType = "PUBLIC KEY"
	}
	switch pemType {
	case "PRIVATE KEY":
		if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
			if rk, ok := k.(*rsa.PrivateKey); ok {
				return x509.MarshalPKCS1PrivateKey(rk), "RSA PRIVATE KEY", true
			}
		}
	case "PUBLIC KEY":
		if k, err := x509.ParsePKIXPublicKey(der); err == nil {
			if rk, ok := k.(*rsa.PublicKey); ok {
				return x509.MarshalPKCS1PublicKey(rk), "RSA PUBLIC KEY", true
			}
		}
	}
	return nil, "", false
}

func (d *MaterialDigest) clone() *MaterialDigest {
	if d == nil {
		return nil
	}
	c := *d
	c.SHA256 = append([]byte(nil), d.SHA256...)
	return &c
}
