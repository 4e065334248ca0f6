package kmip

// The attribute codec: the stored form of a value (encodeValue,
// decodeValue), attributes read from requests and written to responses.

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// ---- encoded values ----------------------------------------------------

// encodeValue is the stored form of an attribute value: a type letter, a
// colon and the value in text.
func encodeValue(it item) string {
	switch it.typ {
	case ttlv.TypeTextString:
		return "t:" + string(it.val)
	case ttlv.TypeInteger:
		return "i:" + strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(it.val))), 10)
	case ttlv.TypeEnumeration:
		return "e:" + strconv.FormatUint(uint64(binary.BigEndian.Uint32(it.val)), 10)
	case ttlv.TypeInterval:
		return "v:" + strconv.FormatUint(uint64(binary.BigEndian.Uint32(it.val)), 10)
	case ttlv.TypeLongInteger:
		return "l:" + strconv.FormatInt(int64(binary.BigEndian.Uint64(it.val)), 10)
	case ttlv.TypeDateTime:
		return "d:" + strconv.FormatInt(int64(binary.BigEndian.Uint64(it.val)), 10)
	case ttlv.TypeDateTimeExtended:
		return "D:" + strconv.FormatInt(int64(binary.BigEndian.Uint64(it.val)), 10)
	case ttlv.TypeBoolean:
		return "b:" + strconv.FormatBool(binary.BigEndian.Uint64(it.val) != 0)
	case ttlv.TypeByteString:
		return "x:" + hex.EncodeToString(it.val)
	case ttlv.TypeBigInteger:
		return "n:" + hex.EncodeToString(it.val)
	case ttlv.TypeStructure:
		return "s:" + hex.EncodeToString(it.val)
	}
	return ""
}

// decodeValue is the inverse of encodeValue.
func decodeValue(s string) (item, bool) {
	if len(s) < 2 || s[1] != ':' {
		return item{}, false
	}
	v := s[2:]
	u32 := func(typ ttlv.Type, n uint64, err error) (item, bool) {
		if err != nil {
			return item{}, false
		}
		return item{typ: typ, val: binary.BigEndian.AppendUint32(nil, uint32(n))}, true
	}
	u64 := func(typ ttlv.Type, n int64, err error) (item, bool) {
		if err != nil {
			return item{}, false
		}
		return item{typ: typ, val: binary.BigEndian.AppendUint64(nil, uint64(n))}, true
	}
	raw := func(typ ttlv.Type) (item, bool) {
		b, err := hex.DecodeString(v)
		if err != nil {
			return item{}, false
		}
		return item{typ: typ, val: b}, true
	}
	switch s[0] {
	case 't':
		return item{typ: ttlv.TypeTextString, val: []byte(v)}, true
	case 'i':
		n, err := strconv.ParseInt(v, 10, 32)
		return u32(ttlv.TypeInteger, uint64(uint32(int32(n))), err)
	case 'e':
		n, err := strconv.ParseUint(v, 10, 32)
		return u32(ttlv.TypeEnumeration, n, err)
	case 'v':
		n, err := strconv.ParseUint(v, 10, 32)
		return u32(ttlv.TypeInterval, n, err)
	case 'l':
		n, err := strconv.ParseInt(v, 10, 64)
		return u64(ttlv.TypeLongInteger, n, err)
	case 'd':
		n, err := strconv.ParseInt(v, 10, 64)
		return u64(ttlv.TypeDateTime, n, err)
	case 'D':
		n, err := strconv.ParseInt(v, 10, 64)
		return u64(ttlv.TypeDateTimeExtended, n, err)
	case 'b':
		b, err := strconv.ParseBool(v)
		n := int64(0)
		if b {
			n = 1
		}
		return u64(ttlv.TypeBoolean, n, err)
	case 'x':
		return raw(ttlv.TypeByteString)
	case 'n':
		return raw(ttlv.TypeBigInteger)
	case 's':
		it, ok := raw(ttlv.TypeStructure)
		if ok && check(it.val, 1) != nil {
			return item{}, false
		}
		return it, ok
	}
	return item{}, false
}

// ---- attributes in requests --------------------------------------------

// attr is one attribute taken from a request: its name (1.x spelling, or
// the stored custom name), its instance index and its value.
type attr struct {
	name  string
	index int32
	val   item
}

// readTemplate collects the attributes of a 1.x Template-Attribute (or any
// structure holding Attribute members).
func readTemplate(tmpl item) ([]attr, *opError) {
	var out []attr
	f := tmpl.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		switch m.tag {
		case tagAttribute:
			a, perr := readAttribute(m)
			if perr != nil {
				return nil, perr
			}
			out = append(out, a)
		case kmip14.TagName:
			// A template's own name: templates are not supported.
			return nil, notSupported("named templates are not supported")
		}
	}
	return out, nil
}

// readAttribute decodes a 1.x Attribute {Attribute Name, Attribute Index,
// Attribute Value}. The value may be absent (Delete Attribute in 1.x).
func readAttribute(m item) (attr, *opError) {
	var a attr
	var hasName bool
	if perr := m.structure(); perr != nil {
		return a, perr
	}
	f := m.fields()
	for x, ok := f.next(); ok; x, ok = f.next() {
		var perr *opError
		switch x.tag {
		case tagAttributeName:
			a.name, perr = x.text()
			hasName = true
		case tagAttributeIndex:
			a.index, perr = x.integer()
			if perr == nil && a.index < 0 {
				perr = invalidField("a negative Attribute Index")
			}
		case tagAttributeValue:
			a.val = x
		}
		if perr != nil {
			return a, perr
		}
	}
	if !hasName {
		return a, missingData("an Attribute without an Attribute Name")
	}
	if a.name == "Custom Attribute" {
		return a, invalidField("a custom attribute is named by its own name, x-…")
	}
	return a, nil
}

// readAttributes collects the members of a 2.x Attributes structure: each
// is an attribute under its own tag, or a Vendor Attribute (tag Attribute).
func readAttributes(attrs item) ([]attr, *opError) {
	if perr := attrs.structure(); perr != nil {
		return nil, perr
	}
	var out []attr
	f := attrs.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		a, perr := readAttr2(m)
		if perr != nil {
			return nil, perr
		}
		out = append(out, a)
	}
	return out, nil
}

// readAttr2 decodes one 2.x attribute (New Attribute, Current Attribute and
// Attributes members).
func readAttr2(m item) (attr, *opError) {
	if m.tag != tagAttribute {
		if m.tag>>16 == 0x54 {
			return attr{}, notSupported("extension tag %s as an attribute", m.tag)
		}
		return attr{name: tagName(m.tag), val: m}, nil
	}
	var vendor, name string
	var val item
	f := m.fields()
	for x, ok := f.next(); ok; x, ok = f.next() {
		var perr *opError
		switch x.tag {
		case kmip14.TagVendorIdentification:
			vendor, perr = x.text()
		case tagAttributeName:
			name, perr = x.text()
		case tagAttributeValue:
			val = x
		}
		if perr != nil {
			return attr{}, perr
		}
	}
	if name == "" {
		return attr{}, missingData("a Vendor Attribute without an Attribute Name")
	}
	return attr{name: vendorName(vendor, name), val: val}, nil
}

func vendorName(vendor, name string) string {
	if vendor == "" {
		return name
	}
	return vendor + "-" + name
}

// readReference decodes a 2.x Attribute Reference: a tag, or a Vendor
// Identification and Attribute Name.
func readReference(m item) (string, *opError) {
	if m.typ == ttlv.TypeEnumeration {
		v, _ := m.enum()
		t := ttlv.Tag(v)
		if !tagKnown(t) {
			return "", errf(kmip20.ResultReasonUnsupportedAttribute, "unknown attribute tag 0x%06x", v)
		}
		return tagName(t), nil
	}
	if m.typ != ttlv.TypeStructure {
		return "", m.wrongType(ttlv.TypeEnumeration)
	}
	var vendor, name string
	f := m.fields()
	for x, ok := f.next(); ok; x, ok = f.next() {
		var perr *opError
		switch x.tag {
		case kmip14.TagVendorIdentification:
			vendor, perr = x.text()
		case tagAttributeName:
			name, perr = x.text()
		}
		if perr != nil {
			return "", perr
		}
	}
	if name == "" {
		return "", missingData("an Attribute Reference without an Attribute Name")
	}
	return vendorName(vendor, name), nil
}

// nameValue extracts the Name Value of a Name attribute.
func nameValue(v item) (string, *opError) {
	if v.typ == ttlv.TypeTextString {
		return string(v.val), nil
	}
	nv, ok := v.find(kmip14.TagNameValue)
	if !ok {
		return "", missingData("a Name without a Name Value")
	}
	return nv.text()
}

// writeAttr writes one attribute in the client's version: a 1.x Attribute
// structure, or the 2.x attribute under its own tag (a Vendor Attribute for
// custom ones).
func writeAttr(w *writer, v version, a outAttr) {
	if !v.v2() {
		w.begin(tagAttribute)
		w.text(tagAttributeName, a.name)
		if a.index > 0 {
			w.integer(tagAttributeIndex, a.index)
		}
		w.item(tagAttributeValue, a.val)
		w.end()
		return
	}
	if t, ok := tagOfName(a.name); ok {
		w.item(t, a.val)
		return
	}
	vendor, name := splitVendor(a.name)
	w.begin(tagAttribute)
	w.text(kmip14.TagVendorIdentification, vendor)
	w.text(tagAttributeName, name)
	w.item(tagAttributeValue, a.val)
	w.end()
}

// writeReference writes a 2.x Attribute Reference to attribute name.
func writeReference(w *writer, name string) {
	if t, ok := tagOfName(name); ok {
		w.enum(tagAttributeRef, uint32(t))
		return
	}
	vendor, n := splitVendor(name)
	w.begin(tagAttributeRef)
	w.text(kmip14.TagVendorIdentification, vendor)
	w.text(tagAttributeName, n)
	w.end()
}
