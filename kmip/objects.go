package kmip

// Managed objects on the wire: the Key Block of keys and secret data, the
// Opaque Object and the Certificate, encoded for Get here; decoded for
// Register in object_register.go; key formats in object_keys.go.
//
// Payload storage: symmetric keys, secret data and opaque objects are kept
// as raw bytes; certificates and asymmetric keys as PEM, the form Barbican
// clients read over REST, and turned back into DER for KMIP.

import (
	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

const (
	fmtRaw         = uint32(kmip14.KeyFormatTypeRaw)
	fmtOpaque      = uint32(kmip14.KeyFormatTypeOpaque)
	fmtPKCS1       = uint32(kmip14.KeyFormatTypePKCS_1)
	fmtPKCS8       = uint32(kmip14.KeyFormatTypePKCS_8)
	fmtX509        = uint32(kmip14.KeyFormatTypeX_509)
	fmtECPrivate   = uint32(kmip14.KeyFormatTypeECPrivateKey)
	fmtTransparent = uint32(kmip14.KeyFormatTypeTransparentSymmetricKey)
)

// objectTag is the tag of the managed object structure of each type.
var objectTag = map[kms.SecretType]ttlv.Tag{
	kms.Symmetric:   kmip14.TagSymmetricKey,
	kms.Passphrase:  kmip14.TagSecretData,
	kms.Opaque:      kmip14.TagOpaqueObject,
	kms.Private:     kmip14.TagPrivateKey,
	kms.Public:      kmip14.TagPublicKey,
	kms.Certificate: kmip14.TagCertificate,
}

// writeObject writes the managed object of sec with its payload, in the Key
// Format Type asked for (0: the natural one).
func writeObject(w *writer, sec *kms.Secret, payload []byte, format uint32) *opError {
	switch sec.Type {
	case kms.Symmetric:
		if format == 0 {
			format = fmtRaw
		}
		if format != fmtRaw && format != fmtTransparent {
			return formatNotSupported(format, sec.Type)
		}
		w.begin(kmip14.TagSymmetricKey)
		w.begin(kmip14.TagKeyBlock)
		w.enum(kmip14.TagKeyFormatType, format)
		w.begin(kmip14.TagKeyValue)
		if format == fmtRaw {
			w.bytes(kmip14.TagKeyMaterial, payload)
		} else {
			w.begin(kmip14.TagKeyMaterial)
			w.bytes(kmip14.TagKey, payload)
			w.end()
		}
		w.end()
		if alg, ok := algToKMIP(sec.Algorithm); ok {
			w.enum(kmip14.TagCryptographicAlgorithm, alg)
		}
		bits := sec.BitLength
		if bits == 0 {
			bits = 8 * len(payload)
		}
		w.integer(kmip14.TagCryptographicLength, int32(bits))
		w.end()
		w.end()
	case kms.Passphrase:
		if format != 0 && format != fmtOpaque {
			return formatNotSupported(format, sec.Type)
		}
		w.begin(kmip14.TagSecretData)
		w.enum(kmip14.TagSecretDataType, uint32(kmip14.SecretDataTypePassword))
		w.begin(kmip14.TagKeyBlock)
		w.enum(kmip14.TagKeyFormatType, fmtOpaque)
		w.begin(kmip14.TagKeyValue)
		w.bytes(kmip14.TagKeyMaterial, payload)
		w.end()
		w.end()
		w.end()
	case kms.Opaque:
		if format != 0 {
			return formatNotSupported(format, sec.Type)
		}
		w.begin(kmip14.TagOpaqueObject)
		w.enum(kmip14.TagOpaqueDataType, opaqueDataType(sec))
		w.bytes(kmip14.TagOpaqueDataValue, payload)
		w.end()
	case kms.Certificate:
		if format != 0 {
			return formatNotSupported(format, sec.Type)
		}
		der := fromPEM(payload)
		w.begin(kmip14.TagCertificate)
		w.enum(kmip14.TagCertificateType, uint32(kmip14.CertificateTypeX_509))
		w.bytes(kmip14.TagCertificateValue, der)
		w.end()
	case kms.Private, kms.Public:
		der, have := asymDER(sec, payload)
		if format == 0 {
			format = defaultFormat(sec, have)
		}
		tm, perr := transparentMaterial(sec.Type, der, have, format)
		if perr != nil {
			return perr
		}
		defer crypto.Zero(tm)
		out := der
		if tm == nil {
			if out, perr = convertKey(sec.Type, der, have, format); perr != nil {
				return perr
			}
		}
		if sec.Type == kms.Private {
			// PEM decoding and conversion made copies of the key.
			defer func() {
				if !sameStart(der, payload) {
					crypto.Zero(der)
				}
				if !sameStart(out, der) {
					crypto.Zero(out)
				}
			}()
		}
		w.begin(objectTag[sec.Type])
		w.begin(kmip14.TagKeyBlock)
		w.enum(kmip14.TagKeyFormatType, format)
		w.begin(kmip14.TagKeyValue)
		if tm != nil {
			w.b = append(w.b, tm...)
		} else {
			w.bytes(kmip14.TagKeyMaterial, out)
		}
		w.end()
		if alg, ok := algToKMIP(sec.Algorithm); ok {
			w.enum(kmip14.TagCryptographicAlgorithm, alg)
		}
		if sec.BitLength > 0 {
			w.integer(kmip14.TagCryptographicLength, int32(sec.BitLength))
		}
		w.end()
		w.end()
	default:
		return notSupported("objects of type %s", sec.Type)
	}
	return nil
}

// sameStart reports whether two slices share their first byte.
func sameStart(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

func formatNotSupported(f uint32, t kms.SecretType) *opError {
	return errf(kmip20.ResultReasonKeyFormatTypeNotSupported, "Key Format Type %s is not available for a %s object",
		kmip14.KeyFormatType(f), t)
}

func opaqueDataType(sec *kms.Secret) uint32 {
	if it, ok := decodeValue(sec.Attributes[attrOpaqueDataType]); ok && it.typ == ttlv.TypeEnumeration {
		v, _ := it.enum()
		return v
	}
	// KMIP defines no Opaque Data Type value; extensions start at 0x80000000.
	return 0x80000000
}

// defaultFormat is the Key Format Type a Get answers when the request names
// none: PKCS#1 for RSA keys (KMIP's default for them, and what the 1.4
// test cases' Digests name), else the stored format.
func defaultFormat(sec *kms.Secret, have uint32) uint32 {
	if alg, ok := algToKMIP(sec.Algorithm); ok && alg == uint32(kmip14.CryptographicAlgorithmRSA) &&
		(have == fmtPKCS8 || have == fmtX509) {
		return fmtPKCS1
	}
	return have
}
