package kmip

// The attributes of a secret: owned ones read from its fields, stored ones
// decoded from Secret.Attributes.

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// ---- attributes of a secret --------------------------------------------

// outAttr is an attribute ready to be written: name, index, and value (whose
// tag is ignored).
type outAttr struct {
	name  string
	index int32
	val   item
}

func u32Item(typ ttlv.Type, v uint32) item {
	return item{typ: typ, val: binary.BigEndian.AppendUint32(nil, v)}
}

func timeItem(t time.Time) item {
	return item{typ: ttlv.TypeDateTime, val: binary.BigEndian.AppendUint64(nil, uint64(t.Unix()))}
}

func nameItem(name string) item {
	var w writer
	w.text(kmip14.TagNameValue, name)
	w.enum(kmip14.TagNameType, uint32(kmip14.NameTypeUninterpretedTextString))
	return item{typ: ttlv.TypeStructure, val: w.b}
}

// owned returns the value of an owned attribute of sec, if it has one.
func owned(sec *kms.Secret, name string) (item, bool) {
	date := func(t *time.Time) (item, bool) {
		if t == nil {
			return item{}, false
		}
		return timeItem(*t), true
	}
	switch name {
	case attrUniqueID:
		return item{typ: ttlv.TypeTextString, val: []byte(sec.ID)}, true
	case attrObjectType:
		return u32Item(ttlv.TypeEnumeration, typeToKMIP[sec.Type]), true
	case attrName:
		if sec.Name == "" {
			return item{}, false
		}
		return nameItem(sec.Name), true
	case attrAlgorithm:
		if v, ok := algToKMIP(sec.Algorithm); ok {
			return u32Item(ttlv.TypeEnumeration, v), true
		}
	case attrLength:
		if sec.BitLength > 0 {
			return u32Item(ttlv.TypeInteger, uint32(sec.BitLength)), true
		}
	case attrCertType:
		if sec.Type == kms.Certificate {
			return u32Item(ttlv.TypeEnumeration, uint32(kmip14.CertificateTypeX_509)), true
		}
	case attrState:
		return u32Item(ttlv.TypeEnumeration, kmipState(sec)), true
	case attrInitialDate:
		return timeItem(sec.Created), true
	case attrActivation:
		return date(sec.ActivationDate)
	case attrDeactivation:
		return date(sec.DeactivationDate)
	case attrCompromise:
		return date(sec.CompromiseDate)
	case attrDestroy:
		return date(sec.DestroyDate)
	case attrLastChange:
		return timeItem(sec.Updated), true
	}
	return item{}, false
}

// instances returns the stored instances of name, by index.
func instances(sec *kms.Secret, name string) []outAttr {
	var out []outAttr
	for _, in := range sec.Instances(name) {
		if it, ok := decodeValue(in.Value); ok {
			out = append(out, outAttr{name: name, index: in.Index, val: it})
		}
	}
	return out
}

// attributesOf lists sec's attributes, as the client's version knows them.
// names restricts the list (nil: all).
func attributesOf(sec *kms.Secret, v version, names []string) []outAttr {
	want := func(n string) bool { return names == nil || slices.Contains(names, n) }
	var out []outAttr
	for _, n := range ownedAttrs {
		if !want(n) {
			continue
		}
		if it, ok := owned(sec, n); ok {
			out = append(out, outAttr{name: n, val: it})
		}
	}
	for _, a := range serverAttrs(sec, v, names != nil) {
		if want(a.name) {
			out = append(out, a)
		}
	}
	keys := make([]string, 0, len(sec.Attributes))
	for k := range sec.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var hasParams bool
	for _, k := range keys {
		n, idx := kms.ParseInstanceKey(k)
		if n == attrParameters {
			hasParams = true
		}
		if !want(n) || !definedAt(n, v) {
			continue
		}
		if it, ok := decodeValue(sec.Attributes[k]); ok {
			out = append(out, outAttr{name: n, index: idx, val: it})
		}
	}
	for _, va := range vendorAttrs(sec, names == nil) {
		if want(va.name) {
			out = append(out, va)
		}
	}
	// A secret made over REST has a mode but no Cryptographic Parameters.
	if m, ok := modeToKMIP(sec.Mode); ok && !hasParams && want(attrParameters) {
		var w writer
		w.enum(kmip14.TagBlockCipherMode, m)
		out = append(out, outAttr{name: attrParameters, val: item{typ: ttlv.TypeStructure, val: w.b}})
	}
	return out
}
