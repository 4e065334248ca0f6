package kmip

// Decoding the managed object of a Register request (objects.go encodes
// them for Get).

import (
	"crypto/x509"
	"encoding/pem"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// registered is a managed object decoded from a Register request.
type registered struct {
	typ         kms.SecretType
	payload     []byte
	contentType string
	alg         string
	bits        int
	attrs       []attr // object properties kept as attributes (Key Format Type …)
	// structured is a Key Material structure other than Transparent
	// Symmetric Key's (the Transparent asymmetric formats).
	structured *item
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
			if r.structured != nil {
				return nil, notSupported("only Transparent Symmetric Key material is accepted in structured form for a Symmetric Key")
			}
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
		var pemType string
		if r.structured != nil {
			var der []byte
			var perr *opError
			if der, format, pemType, perr = fromTransparent(t, format, *r.structured); perr != nil {
				return nil, perr
			}
			defer crypto.Zero(der)
			material = der
			if perr := statedMatches(r, t, format, der); perr != nil {
				return nil, perr
			}
		} else if _, _, isT := transparentHalf(format); isT {
			return nil, invalidField("a %s Key Material is a structure", kmip14.KeyFormatType(format))
		} else if pemType, perr = asymPEMType(t, format, material); perr != nil {
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
		if r.structured != nil {
			return nil, notSupported("Secret Data material is a byte string, not a structure")
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
				if k, ok := km.find(kmip14.TagKey); ok {
					material, perr = k.bytes()
				} else {
					r.structured = &km // a Transparent asymmetric key, read by the caller
				}
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
	if len(material) == 0 && r.structured == nil {
		return 0, nil, missingData("the Key Block has no key material")
	}
	return format, material, nil
}

// statedMatches refuses a Cryptographic Algorithm or Length in the Key
// Block that is not the Transparent key's own.
func statedMatches(r *registered, t kms.SecretType, format uint32, der []byte) *opError {
	alg, bits := describeKey(t, format, der)
	okAlg := r.alg == "" || r.alg == alg || (alg == "ec" && (r.alg == "ecdsa" || r.alg == "ecdh"))
	if !okAlg {
		return invalidField("the Key Block says %s, the key material is %s", r.alg, alg)
	}
	if r.bits != 0 && r.bits != bits {
		return invalidField("the Key Block says %d bits, the key material has %d", r.bits, bits)
	}
	return nil
}
