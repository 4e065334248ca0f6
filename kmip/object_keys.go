package kmip

// Asymmetric keys and certificates between their stored form (PEM, as
// Barbican clients read them) and the DER formats KMIP carries: which
// format a key is in, converting RSA keys, and naming a key's algorithm
// and size.

import (
	gocrypto "crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"

	"github.com/gemalto/kmip-go/kmip14"

	"github.com/keywarden/keywarden/kms"
)

// fromPEM returns the DER in a PEM payload, or the payload unchanged.
func fromPEM(b []byte) []byte {
	if blk, _ := pem.Decode(b); blk != nil {
		return blk.Bytes
	}
	return b
}

// asymDER returns the DER of an asymmetric key and its Key Format Type,
// from the PEM block type or, for REST payloads, by parsing.
func asymDER(sec *kms.Secret, payload []byte) ([]byte, uint32) {
	der := payload
	blockType := ""
	if blk, _ := pem.Decode(payload); blk != nil {
		der, blockType = blk.Bytes, blk.Type
	}
	if f, ok := pemFormat(blockType); ok {
		return der, f
	}
	if it, ok := decodeValue(sec.Attributes[attrKeyFormatType]); ok {
		v, _ := it.enum()
		return der, v
	}
	if sec.Type == kms.Public {
		if _, err := x509.ParsePKIXPublicKey(der); err == nil {
			return der, fmtX509
		}
		return der, fmtPKCS1
	}
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return der, fmtPKCS8
	}
	if _, err := x509.ParseECPrivateKey(der); err == nil {
		return der, fmtECPrivate
	}
	return der, fmtPKCS1
}

// pemFormat is the Key Format Type of the DER in a PEM block of this type.
func pemFormat(blockType string) (uint32, bool) {
	switch blockType {
	case "RSA PRIVATE KEY", "RSA PUBLIC KEY":
		return fmtPKCS1, true
	case "PRIVATE KEY":
		return fmtPKCS8, true
	case "EC PRIVATE KEY":
		return fmtECPrivate, true
	case "PUBLIC KEY":
		return fmtX509, true
	}
	return 0, false
}

// convertKey re-encodes an RSA key between the formats Go can read and
// write; anything else must already be in the format asked for.
func convertKey(t kms.SecretType, der []byte, have, want uint32) ([]byte, *opError) {
	if have == want {
		return der, nil
	}
	fail := formatNotSupported(want, t)
	if t == kms.Private {
		var key any
		var err error
		switch have {
		case fmtPKCS1:
			key, err = x509.ParsePKCS1PrivateKey(der)
		case fmtPKCS8:
			key, err = x509.ParsePKCS8PrivateKey(der)
		case fmtECPrivate:
			key, err = x509.ParseECPrivateKey(der)
		default:
			return nil, fail
		}
		if err != nil {
			return nil, fail
		}
		switch want {
		case fmtPKCS8:
			out, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				return nil, fail
			}
			return out, nil
		case fmtPKCS1:
			if k, ok := key.(*rsa.PrivateKey); ok {
				return x509.MarshalPKCS1PrivateKey(k), nil
			}
		case fmtECPrivate:
			if k, ok := key.(*ecdsa.PrivateKey); ok {
				out, err := x509.MarshalECPrivateKey(k)
				if err == nil {
					return out, nil
				}
			}
		}
		return nil, fail
	}
	var key any
	var err error
	switch have {
	case fmtPKCS1:
		key, err = x509.ParsePKCS1PublicKey(der)
	case fmtX509:
		key, err = x509.ParsePKIXPublicKey(der)
	default:
		return nil, fail
	}
	if err != nil {
		return nil, fail
	}
	switch want {
	case fmtX509:
		out, err := x509.MarshalPKIXPublicKey(key)
		if err == nil {
			return out, nil
		}
	case fmtPKCS1:
		if k, ok := key.(*rsa.PublicKey); ok {
			return x509.MarshalPKCS1PublicKey(k), nil
		}
	}
	return nil, fail
}

// asymPEMType checks an asymmetric key against its format and names its
// PEM block.
func asymPEMType(t kms.SecretType, format uint32, der []byte) (string, *opError) {
	var err error
	var name string
	switch {
	case t == kms.Private && format == fmtPKCS1:
		_, err = x509.ParsePKCS1PrivateKey(der)
		name = "RSA PRIVATE KEY"
	case t == kms.Private && format == fmtPKCS8:
		_, err = x509.ParsePKCS8PrivateKey(der)
		name = "PRIVATE KEY"
	case t == kms.Private && format == fmtECPrivate:
		_, err = x509.ParseECPrivateKey(der)
		name = "EC PRIVATE KEY"
	case t == kms.Public && format == fmtPKCS1:
		_, err = x509.ParsePKCS1PublicKey(der)
		name = "RSA PUBLIC KEY"
	case t == kms.Public && format == fmtX509:
		_, err = x509.ParsePKIXPublicKey(der)
		name = "PUBLIC KEY"
	default:
		return "", formatNotSupported(format, t)
	}
	if err != nil {
		return "", invalidField("the key material is not a %s key: %v", kmip14.KeyFormatType(format), err)
	}
	return name, nil
}

// describeKey names the algorithm and size of an asymmetric key.
func describeKey(t kms.SecretType, format uint32, der []byte) (string, int) {
	var pub any
	switch {
	case t == kms.Public && format == fmtPKCS1:
		pub, _ = x509.ParsePKCS1PublicKey(der)
	case t == kms.Public:
		pub, _ = x509.ParsePKIXPublicKey(der)
	default:
		var key any
		switch format {
		case fmtPKCS1:
			key, _ = x509.ParsePKCS1PrivateKey(der)
		case fmtPKCS8:
			key, _ = x509.ParsePKCS8PrivateKey(der)
		case fmtECPrivate:
			key, _ = x509.ParseECPrivateKey(der)
		}
		if s, ok := key.(gocrypto.Signer); ok {
			pub = s.Public()
		}
	}
	return describePublic(pub)
}

func describePublic(pub any) (string, int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "rsa", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ec", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "ed25519", 256
	}
	return "", 0
}
