package kms

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"

	"github.com/keywarden/keywarden/crypto"
)

// The rules of using a key on the server (KMIP Encrypt, Sign, MAC …): the
// caller may (secret:use), the key is Active, its usage mask allows the
// operation. The attributes read here are kept in Secret.Attributes by the
// KMIP adapter, in its encoding: an Integer is "i:<decimal>", a Boolean
// "b:true" or "b:false".

// Attribute names kms reads (KMIP 1.x spelling).
const (
	AttrUsageMask   = "Cryptographic Usage Mask"
	AttrSensitive   = "Sensitive"
	AttrExtractable = "Extractable"
)

// KeyUse is a bit of the KMIP Cryptographic Usage Mask.
type KeyUse uint32

const (
	UseSign        KeyUse = 0x1
	UseVerify      KeyUse = 0x2
	UseEncrypt     KeyUse = 0x4
	UseDecrypt     KeyUse = 0x8
	UseMACGenerate KeyUse = 0x80
	UseMACVerify   KeyUse = 0x100
)

var useNames = map[KeyUse]string{
	UseSign: "sign", UseVerify: "verify", UseEncrypt: "encrypt", UseDecrypt: "decrypt",
	UseMACGenerate: "mac", UseMACVerify: "mac_verify",
}

// parseUsageMask reads a stored Cryptographic Usage Mask (the KMIP
// adapter's Integer encoding, "i:<decimal>").
func parseUsageMask(stored string) (KeyUse, bool) {
	if !strings.HasPrefix(stored, "i:") {
		return 0, false
	}
	n, err := strconv.ParseInt(stored[2:], 10, 32)
	if err != nil {
		return 0, false
	}
	return KeyUse(uint32(int32(n))), true
}

// useName names want for an error: one use by name, several as a mask.
func useName(want KeyUse) string {
	if n, ok := useNames[want]; ok {
		return n
	}
	return fmt.Sprintf("uses 0x%x", uint32(want))
}

// extractable refuses the material of a key marked Sensitive or not
// Extractable (KMIP 1.4 / 2.x): the server uses it, nobody reads it.
func extractable(sec *Secret) error {
	if sec.Attributes[AttrSensitive] == "b:true" {
		return newErr(KindSensitive, "secret %s is sensitive: it is used by the server and never returned", sec.ID)
	}
	if sec.Attributes[AttrExtractable] == "b:false" {
		return newErr(KindNotExtractable, "secret %s is not extractable: it is used by the server and never returned", sec.ID)
	}
	return nil
}

// keepProtection refuses a change that would lower a key's protection:
// as in PKCS#11, Sensitive only ever becomes true and Extractable false.
func keepProtection(before map[string]string, sec *Secret) error {
	if (before[AttrSensitive] == "b:true" && sec.Attributes[AttrSensitive] != "b:true") ||
		(before[AttrExtractable] == "b:false" && sec.Attributes[AttrExtractable] != "b:false") {
		return Forbidden("secret %s: Sensitive can only become true and Extractable false", sec.ID)
	}
	return nil
}

// useKey returns a key's secret and material for one use, after the
// policy, state and usage-mask checks. The caller zeroes the material.
func (s *Service) useKey(ctx context.Context, who Identity, id string, use KeyUse) (*Secret, []byte, error) {
	l, err := s.load(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	sec := l.rec.Secret
	if sec.Expired(s.now()) {
		return nil, nil, NotFound("Secret not found.")
	}
	if err := s.allowSecret(SecretUse, who, sec); err != nil {
		return nil, nil, err
	}
	if err := sec.Usable(use); err != nil {
		return nil, nil, err
	}
	if err := sec.inPeriod(use, s.now()); err != nil {
		return nil, nil, err
	}
	if !l.rec.HasPayload || l.rec.Sealed == nil {
		return nil, nil, NotFound("Secret has no payload.")
	}
	pt, err := s.keys.Open(ctx, l.rec.binding(), l.rec.Sealed)
	if err != nil {
		return nil, nil, internal("open", err)
	}
	return sec.Clone(), pt, nil
}

// privateKey parses a stored private key: PEM or DER, PKCS#8, PKCS#1 or
// SEC 1.
func privateKey(material []byte) (any, error) {
	der := material
	if b, _ := pem.Decode(material); b != nil {
		der = b.Bytes
		defer crypto.Zero(der)
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, Invalid("the private key cannot be read")
}

// publicKey parses a stored public key (PEM or DER, SPKI or PKCS#1), or
// returns the public half of a private key.
func publicKey(sec *Secret, material []byte) (any, error) {
	if sec.Type == Private {
		k, err := privateKey(material)
		if err != nil {
			return nil, err
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return &k.PublicKey, nil
		case *ecdsa.PrivateKey:
			return &k.PublicKey, nil
		}
		return nil, Invalid("keys of this algorithm are not served")
	}
	der := material
	if b, _ := pem.Decode(material); b != nil {
		der = b.Bytes
	}
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return k, nil
	}
	return nil, Invalid("the public key cannot be read")
}
