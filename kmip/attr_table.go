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
//
// This file holds the tables: attribute names, which are owned, stored,
// multi-valued or read-only, the versions that define them, and the
// mappings of object types, states, algorithms and modes. attr_codec.go
// reads and writes attributes on the wire; attr_secret.go lists a
// secret's attributes.

import (
	"strconv"
	"strings"
	"sync"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// Attribute names (KMIP 1.x spelling).
const (
	attrUniqueID       = "Unique Identifier"
	attrName           = kms.AttrName
	attrObjectType     = "Object Type"
	attrAlgorithm      = "Cryptographic Algorithm"
	attrLength         = "Cryptographic Length"
	attrParameters     = "Cryptographic Parameters"
	attrUsageMask      = kms.AttrUsageMask
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

// settable checks that a client may set attribute a (and that its value
// has a plausible shape).
func settable(a attr) *opError {
	if isVendorAttr(a.name) { // a change of its own (attr_vendor.go), on an existing object
		return invalidField("%s is added to an existing object with Add Attribute", a.name)
	}
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
