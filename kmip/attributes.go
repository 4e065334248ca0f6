package kmip

// The one place where kms.Secret and KMIP attributes meet.
//
// Attributes the object model has a field for are "owned": Unique
// Identifier, Name, Object Type, Cryptographic Algorithm and Length, State,
// the lifecycle dates, Last Change Date (and Certificate Type, derived). They
// are read from the Secret and change only through kms.Service.
//
// Every other attribute a client may set (Object Group, Cryptographic Usage
// Mask, Contact Information, Cryptographic Parameters, Link, Description …,
// and custom attributes: 1.x "x-…"/"y-…" names, 2.x Vendor Attributes) is
// kept in Secret.Attributes, keyed by its KMIP 1.x attribute name — with
// "#n" appended for instance n > 0 of a multi-valued attribute — and valued
// by its type and encoded value (see encodeValue). Keeping the encoded value
// makes the round trip exact and a Locate on it a string comparison.

import (
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// Attribute names (KMIP 1.x spelling).
const (
	attrUniqueID       = "Unique Identifier"
	attrName           = "Name"
	attrObjectType     = "Object Type"
	attrAlgorithm      = "Cryptographic Algorithm"
	attrLength         = "Cryptographic Length"
	attrParameters     = "Cryptographic Parameters"
	attrUsageMask      = "Cryptographic Usage Mask"
	attrState          = "State"
	attrInitialDate    = "Initial Date"
	attrActivation     = "Activation Date"
	attrDeactivation   = "Deactivation Date"
	attrCompromise     = "Compromise Date"
	attrDestroy        = "Destroy Date"
	attrLastChange     = "Last Change Date"
	attrCertType       = "Certificate Type"
	attrObjectGroup    = "Object Group"
	attrKeyFormatType  = "Key Format Type"
	attrOpaqueDataType = "Opaque Data Type"
	attrOpPolicyName   = "Operation Policy Name"
)

// owned attributes, in the order Get Attributes lists them.
var ownedAttrs = []string{
	attrUniqueID, attrObjectType, attrName, attrAlgorithm, attrLength, attrCertType, attrState,
	attrInitialDate, attrActivation, attrDeactivation, attrCompromise, attrDestroy, attrLastChange,
}

// readOnly attributes are kept by the server; a client cannot set them.
var readOnly = map[string]bool{
	attrUniqueID: true, attrObjectType: true, attrState: true, attrInitialDate: true,
	attrActivation: true, attrDeactivation: true, attrCompromise: true, attrDestroy: true,
	attrLastChange: true, attrCertType: true, attrAlgorithm: true, attrLength: true,
	attrKeyFormatType: true, attrOpaqueDataType: true,
	"Compromise Occurrence Date": true, "Archive Date": true, "Revocation Reason": true,
	"Digest": true, "Fresh": true, "Key Value Present": true, "Key Value Location": true,
	"Original Creation Date": true, "Lease Time": true, "Usage Limits": true,
	"Always Sensitive": true, "Never Extractable": true, "Random Number Generator": true,
	"Certificate Length": true, "Certificate Identifier": true, "Certificate Subject": true,
	"Certificate Issuer": true, "X.509 Certificate Identifier": true,
	"X.509 Certificate Subject": true, "X.509 Certificate Issuer": true,
	"Short Unique Identifier": true,
}

// stored lists the standard attributes kept in Secret.Attributes, with
// whether they may have several instances.
var stored = map[string]bool{
	attrObjectGroup: true, attrParameters: true, "Link": true,
	"Application Specific Information": true, "Alternative Name": true,
	attrUsageMask: false, "Contact Information": false, attrOpPolicyName: false,
	"Cryptographic Domain Parameters": false, "Description": false, "Comment": false,
	"Sensitive": false, "Extractable": false, "Process Start Date": false,
	"Protect Stop Date": false, "PKCS#12 Friendly Name": false, "NIST Key Type": false,
	"Protection Level": false, "Protection Period": false, "Protection Storage Mask": false,
	"Quantum Safe": false, "Digital Signature Algorithm": false,
	attrKeyFormatType: false, attrOpaqueDataType: false,
}

// since and until bound the versions that define an attribute; others are
// defined from 1.0 on. A response only lists attributes its version knows.
var since = map[string]version{
	"Certificate Length": {1, 1}, "Digital Signature Algorithm": {1, 1}, "Fresh": {1, 1},
	"Alternative Name": {1, 2}, "Key Value Present": {1, 2}, "Key Value Location": {1, 2},
	"Original Creation Date": {1, 2}, "Random Number Generator": {1, 3},
	"PKCS#12 Friendly Name": {1, 4}, "Description": {1, 4}, "Comment": {1, 4},
	"Sensitive": {1, 4}, "Always Sensitive": {1, 4}, "Extractable": {1, 4}, "Never Extractable": {1, 4},
	attrKeyFormatType: {2, 0}, "NIST Key Type": {2, 0}, attrOpaqueDataType: {2, 0},
	"Protection Level": {2, 0}, "Protection Period": {2, 0}, "Protection Storage Mask": {2, 0},
	"Quantum Safe": {2, 0}, "Short Unique Identifier": {2, 0},
}

var onlyV1 = map[string]bool{
	attrOpPolicyName: true, "Certificate Identifier": true, "Certificate Subject": true,
	"Certificate Issuer": true,
}

func definedAt(name string, v version) bool {
	if isCustom(name) {
		return true
	}
	if s, ok := since[name]; ok && !v.atLeast(s.major, s.minor) {
		return false
	}
	return !(v.v2() && onlyV1[name])
}

// isCustom reports whether name is a custom (vendor) attribute: any name
// that is not a standard one. 1.x spells them "x-…" (client) and "y-…"
// (server); a 2.x Vendor Attribute is stored as "<vendor>-<name>".
func isCustom(name string) bool {
	_, std := tagOfName(name)
	return !std
}

// Name ↔ tag, from gemalto's tables.
var (
	nameTagsOnce sync.Once
	nameToTag    map[string]ttlv.Tag
)

func tagOfName(name string) (ttlv.Tag, bool) {
	nameTagsOnce.Do(func() {
		nameToTag = map[string]ttlv.Tag{}
		if e, ok := ttlv.DefaultRegistry.Tags().(*ttlv.Enum); ok {
			for _, v := range e.Values() {
				if n, ok := e.CanonicalName(v); ok {
					nameToTag[n] = ttlv.Tag(v)
				}
			}
		}
	})
	t, ok := nameToTag[name]
	return t, ok
}

// splitVendor splits a stored custom name into a 2.x Vendor Identification
// and Attribute Name.
func splitVendor(name string) (vendor, attr string) {
	if i := strings.IndexByte(name, '-'); i > 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// ---- object types, states, algorithms ----------------------------------

var typeToKMIP = map[kms.SecretType]uint32{
	kms.Symmetric:   uint32(kmip14.ObjectTypeSymmetricKey),
	kms.Passphrase:  uint32(kmip14.ObjectTypeSecretData),
	kms.Opaque:      uint32(kmip14.ObjectTypeOpaqueObject),
	kms.Private:     uint32(kmip14.ObjectTypePrivateKey),
	kms.Public:      uint32(kmip14.ObjectTypePublicKey),
	kms.Certificate: uint32(kmip14.ObjectTypeCertificate),
}

func typeFromKMIP(v uint32) (kms.SecretType, bool) {
	for t, k := range typeToKMIP {
		if k == v {
			return t, true
		}
	}
	return "", false
}

var stateToKMIP = map[kms.State]uint32{
	kms.PreActive:   uint32(kmip14.StatePreActive),
	kms.Active:      uint32(kmip14.StateActive),
	kms.Deactivated: uint32(kmip14.StateDeactivated),
	kms.Compromised: uint32(kmip14.StateCompromised),
	kms.Destroyed:   uint32(kmip14.StateDestroyed),
}

// kmipState is the KMIP state of a secret: a destroyed secret that had
// been compromised is Destroyed Compromised.
func kmipState(sec *kms.Secret) uint32 {
	if sec.State == kms.Destroyed && sec.CompromiseDate != nil {
		return uint32(kmip14.StateDestroyedCompromised)
	}
	return stateToKMIP[sec.State]
}

func stateFromKMIP(v uint32) (kms.State, bool) {
	if v == uint32(kmip14.StateDestroyedCompromised) {
		return kms.Destroyed, true
	}
	for s, k := range stateToKMIP {
		if k == v {
			return s, true
		}
	}
	return "", false
}

// Algorithms are stored as Barbican names ("aes", "3des", "hmacsha256");
// those Barbican does not name use gemalto's normalized name, lowercased.
var algAliases = map[string]kmip14.CryptographicAlgorithm{
	"aes": kmip14.CryptographicAlgorithmAES, "des": kmip14.CryptographicAlgorithmDES,
	"3des": kmip14.CryptographicAlgorithmDES3, "tripledes": kmip14.CryptographicAlgorithmDES3,
	"rsa": kmip14.CryptographicAlgorithmRSA, "dsa": kmip14.CryptographicAlgorithmDSA,
	"ec": kmip14.CryptographicAlgorithmEC, "ecdsa": kmip14.CryptographicAlgorithmECDSA,
	"dh": kmip14.CryptographicAlgorithmDH, "diffiehellman": kmip14.CryptographicAlgorithmDH,
}

func normAlg(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', ' ':
			return -1
		}
		return r
	}, strings.ToLower(s))
}

// algToKMIP maps a stored algorithm name to the KMIP enumeration.
func algToKMIP(name string) (uint32, bool) {
	if name == "" {
		return 0, false
	}
	n := normAlg(name)
	if v, ok := algAliases[n]; ok {
		return uint32(v), true
	}
	e := kmip14.CryptographicAlgorithmEnum
	for _, v := range e.Values() {
		if cn, _ := e.Name(v); normAlg(cn) == n {
			return v, true
		}
	}
	return 0, false
}

func algFromKMIP(v uint32) string {
	switch kmip14.CryptographicAlgorithm(v) {
	case kmip14.CryptographicAlgorithmDES3:
		return "3des"
	}
	if n, ok := kmip14.CryptographicAlgorithmEnum.Name(v); ok {
		return normAlg(n)
	}
	return "0x" + strconv.FormatUint(uint64(v), 16)
}

// Block cipher modes are stored lowercase ("cbc", "xts"), as Barbican does.
func modeToKMIP(mode string) (uint32, bool) {
	if mode == "" {
		return 0, false
	}
	e := kmip14.BlockCipherModeEnum
	for _, v := range e.Values() {
		if n, _ := e.Name(v); normAlg(n) == normAlg(mode) {
			return v, true
		}
	}
	return 0, false
}

func modeFromKMIP(v uint32) string {
	if n, ok := kmip14.BlockCipherModeEnum.Name(v); ok {
		return strings.ToLower(n)
	}
	return ""
}

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

// settable checks that a client may set attribute a (and that its value
// has a plausible shape).
func settable(a attr) *opError {
	if readOnly[a.name] {
		return errf(kmip20.ResultReasonReadOnlyAttribute, "the %s attribute is set by the server", a.name)
	}
	if a.name == attrName || isCustom(a.name) {
		return nil
	}
	if _, ok := stored[a.name]; !ok {
		return errf(kmip20.ResultReasonUnsupportedAttribute, "the %s attribute is not supported", a.name)
	}
	return nil
}

// multiValued reports whether an attribute may have several instances.
func multiValued(name string) bool { return stored[name] || isCustom(name) }

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
	// A secret made over REST has a mode but no Cryptographic Parameters.
	if m, ok := modeToKMIP(sec.Mode); ok && !hasParams && want(attrParameters) {
		var w writer
		w.enum(kmip14.TagBlockCipherMode, m)
		out = append(out, outAttr{name: attrParameters, val: item{typ: ttlv.TypeStructure, val: w.b}})
	}
	return out
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
