package kmip

// Managed objects on the wire: the Key Block of keys and secret data, the
// Opaque Object and the Certificate, for Get (encode) and Register (decode).
//
// Payload storage: symmetric keys, secret data and opaque objects are kept
// as raw bytes; certificates and asymmetric keys as PEM, the form Barbican
// clients read over REST, and turned back into DER for KMIP.

import (
	gocrypto "crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"

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
			format = have
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
	switch blockType {
	case "RSA PRIVATE KEY", "RSA PUBLIC KEY":
		return der, fmtPKCS1
	case "PRIVATE KEY":
		return der, fmtPKCS8
	case "EC PRIVATE KEY":
		return der, fmtECPrivate
	case "PUBLIC KEY":
		return der, fmtX509
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

// registered is a managed object decoded from a Register request.
type registered struct {
	typ         kms.SecretType
	payload     []byte
	contentType string
	alg         string
	bits        int
	attrs       []attr // object properties kept as attributes (Key Format Type …)
}

// readObject decodes the managed object of a Register request.
func readObject(objType uint32, obj item) (*registered, *opError) {
	t, ok := typeFromKMIP(objType)
	if !ok {
		return nil, errf(kmip20.ResultReasonInvalidObjectType, "objects of type %s cannot be registered",
			kmip14.ObjectType(objType))
	}
	if obj.tag != objectTag[t] {
		return nil, invalidField("a %s object needs a %s structure, not %s",
			kmip14.ObjectType(objType), tagName(objectTag[t]), tagName(obj.tag))
	}
	if perr := obj.structure(); perr != nil {
		return nil, perr
	}
	r := &registered{typ: t, contentType: kms.ContentTypeBinary}
	switch t {
	case kms.Symmetric, kms.Private, kms.Public:
		kb, ok := obj.find(kmip14.TagKeyBlock)
		if !ok {
			return nil, missingData("the %s has no Key Block", tagName(obj.tag))
		}
		format, material, perr := readKeyBlock(kb, r)
		if perr != nil {
			return nil, perr
		}
		if t == kms.Symmetric {
			if format != fmtRaw && format != fmtTransparent {
				return nil, formatNotSupported(format, t)
			}
			r.payload = material
			if r.bits == 0 {
				r.bits = 8 * len(material)
			} else if r.bits != 8*len(material) {
				return nil, invalidField("Cryptographic Length %d does not match a %d-byte key", r.bits, len(material))
			}
			break
		}
		pemType, perr := asymPEMType(t, format, material)
		if perr != nil {
			return nil, perr
		}
		r.payload = pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: material})
		r.attrs = append(r.attrs, attr{name: attrKeyFormatType, val: u32Item(ttlv.TypeEnumeration, format)})
		if r.alg == "" || r.bits == 0 {
			alg, bits := describeKey(t, format, material)
			if r.alg == "" {
				r.alg = alg
			}
			if r.bits == 0 {
				r.bits = bits
			}
		}
	case kms.Passphrase:
		var sdType uint32
		var hasType bool
		f := obj.fields()
		for m, ok := f.next(); ok; m, ok = f.next() {
			if m.tag == kmip14.TagSecretDataType {
				v, perr := m.enum()
				if perr != nil {
					return nil, perr
				}
				sdType, hasType = v, true
			}
		}
		if !hasType {
			return nil, missingData("the Secret Data has no Secret Data Type")
		}
		if sdType != uint32(kmip14.SecretDataTypePassword) {
			return nil, notSupported("only Secret Data of type Password is supported (it holds passphrases)")
		}
		kb, ok := obj.find(kmip14.TagKeyBlock)
		if !ok {
			return nil, missingData("the Secret Data has no Key Block")
		}
		format, material, perr := readKeyBlock(kb, r)
		if perr != nil {
			return nil, perr
		}
		if format != fmtOpaque && format != fmtRaw {
			return nil, formatNotSupported(format, t)
		}
		r.payload, r.contentType, r.alg, r.bits = material, kms.ContentTypeText, "", 0
	case kms.Opaque:
		var typ item
		var hasType bool
		f := obj.fields()
		for m, ok := f.next(); ok; m, ok = f.next() {
			var perr *opError
			switch m.tag {
			case kmip14.TagOpaqueDataType:
				_, perr = m.enum()
				typ, hasType = m, true
			case kmip14.TagOpaqueDataValue:
				r.payload, perr = m.bytes()
			}
			if perr != nil {
				return nil, perr
			}
		}
		if !hasType || r.payload == nil {
			return nil, missingData("an Opaque Object needs an Opaque Data Type and Value")
		}
		r.attrs = append(r.attrs, attr{name: attrOpaqueDataType, val: typ})
	case kms.Certificate:
		var der []byte
		f := obj.fields()
		for m, ok := f.next(); ok; m, ok = f.next() {
			var perr *opError
			switch m.tag {
			case kmip14.TagCertificateType:
				var ct uint32
				ct, perr = m.enum()
				if perr == nil && ct != uint32(kmip14.CertificateTypeX_509) {
					return nil, notSupported("only X.509 certificates are supported")
				}
			case kmip14.TagCertificateValue:
				der, perr = m.bytes()
			}
			if perr != nil {
				return nil, perr
			}
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, invalidField("the Certificate Value is not an X.509 certificate: %v", err)
		}
		r.payload = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		r.alg, r.bits = describePublic(cert.PublicKey)
	}
	if len(r.payload) == 0 {
		return nil, missingData("the object has no key material")
	}
	return r, nil
}

// readKeyBlock decodes a Key Block: format, material, and the algorithm and
// length it states.
func readKeyBlock(kb item, r *registered) (uint32, []byte, *opError) {
	if perr := kb.structure(); perr != nil {
		return 0, nil, perr
	}
	var format uint32
	var material []byte
	var hasFormat bool
	f := kb.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		var perr *opError
		switch m.tag {
		case kmip14.TagKeyFormatType:
			format, perr = m.enum()
			hasFormat = true
		case kmip14.TagKeyCompressionType:
		case kmip14.TagKeyValue:
			if m.typ == ttlv.TypeByteString {
				return 0, nil, notSupported("wrapped keys are not supported")
			}
			km, ok := m.find(kmip14.TagKeyMaterial)
			if !ok {
				return 0, nil, missingData("the Key Value has no Key Material")
			}
			if km.typ == ttlv.TypeStructure {
				k, ok := km.find(kmip14.TagKey)
				if !ok {
					return 0, nil, notSupported("only Transparent Symmetric Key material is accepted in structured form")
				}
				material, perr = k.bytes()
			} else {
				material, perr = km.bytes()
			}
		case kmip14.TagCryptographicAlgorithm:
			var v uint32
			v, perr = m.enum()
			r.alg = algFromKMIP(v)
		case kmip14.TagCryptographicLength:
			var v int32
			v, perr = m.integer()
			if perr == nil && v < 0 {
				perr = invalidField("a negative Cryptographic Length")
			}
			r.bits = int(v)
		case kmip14.TagKeyWrappingData:
			return 0, nil, notSupported("wrapped keys are not supported")
		}
		if perr != nil {
			return 0, nil, perr
		}
	}
	if !hasFormat {
		return 0, nil, missingData("the Key Block has no Key Format Type")
	}
	if len(material) == 0 {
		return 0, nil, missingData("the Key Block has no key material")
	}
	return format, material, nil
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
