package kmip

// Attributes the server derives and clients never set: Digest, Random
// Number Generator and Original Creation Date. kms computes and keeps what
// they say (Secret.Digest, Secret.Generated, Secret.Created); this file
// words them for the client's version.

import (
	"bytes"
	"crypto/fips140"
	"encoding/binary"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

const (
	attrDigest       = "Digest"
	attrRNG          = "Random Number Generator"
	attrOriginalDate = "Original Creation Date"
)

// serverAttrs lists the derived attributes sec has, as version v knows
// them. Random Number Generator and Original Creation Date only when named:
// PyKMIP 0.10 cannot decode them and fails a whole all-attributes answer
// that holds one, so they are kept out of that answer (Get Attribute List
// still names them).
func serverAttrs(sec *kms.Secret, v version, named bool) []outAttr {
	var out []outAttr
	if it, ok := digestItem(sec, v); ok {
		out = append(out, outAttr{name: attrDigest, val: it})
	}
	if named && hasRNG(sec, v) {
		out = append(out, outAttr{name: attrRNG, val: rngItem()})
	}
	// When the object was first stored here (KMIP 1.2+);
	// only when named, as Random Number Generator (PyKMIP 0.10 cannot
	// decode it either).
	if named && definedAt(attrOriginalDate, v) {
		out = append(out, outAttr{name: attrOriginalDate, val: timeItem(sec.Created)})
	}
	out = append(out, outAttr{name: attrFresh, val: boolItem(sec.Fresh)})
	out = append(out, outAttr{name: attrLeaseTime, val: u32Item(ttlv.TypeInterval, leaseTime)})
	if r := sec.Revocation; r != nil {
		var w writer
		w.enum(kmip14.TagRevocationReasonCode, uint32(r.Code))
		if r.Message != "" {
			w.text(kmip14.TagRevocationMessage, r.Message)
		}
		out = append(out, outAttr{name: attrRevocationReason, val: item{typ: ttlv.TypeStructure, val: w.b}})
		if r.Occurred != nil {
			out = append(out, outAttr{name: attrCompromiseOccurrence, val: timeItem(*r.Occurred)})
		}
	}
	if u := sec.UsageLimits; u != nil {
		var w writer
		w.u64(kmip14.TagUsageLimitsTotal, ttlv.TypeLongInteger, uint64(u.Total))
		w.u64(kmip14.TagUsageLimitsCount, ttlv.TypeLongInteger, uint64(u.Remaining()))
		unit := kmip14.UsageLimitsUnitByte
		if u.Unit == kms.UsageObjects {
			unit = kmip14.UsageLimitsUnitObject
		}
		w.enum(kmip14.TagUsageLimitsUnit, uint32(unit))
		out = append(out, outAttr{name: attrUsageLimits, val: item{typ: ttlv.TypeStructure, val: w.b}})
	}
	if named {
		out = append(out, keyFlags(sec, v)...)
	}
	return out
}

const (
	attrFresh                = "Fresh"
	attrLeaseTime            = "Lease Time"
	attrRevocationReason     = "Revocation Reason"
	attrCompromiseOccurrence = "Compromise Occurrence Date"
	attrAlwaysSensitive      = "Always Sensitive"
	attrNeverExtractable     = "Never Extractable"
	attrUsageLimits          = "Usage Limits"
)

// leaseTime is the Lease Time (KMIP §3.15) answered for every object, in
// seconds: the server grants no leases and ends none, so this only tells a
// client to check the object again (its state, its dates) within the hour
// before it keeps using a copy; test case TL-M-3 shows 3600.
const leaseTime = 3600

// keyFlags are Always Sensitive and Never Extractable (kms records them
// when the object is made) and Sensitive and Extractable at their defaults
// (false, true) when never set: answered when named and in Get Attribute
// List (as TL-M-3 and SKFF-M-9..11 list them), not in an all-attributes
// Get Attributes, which TL-M-3 shows without them.
func keyFlags(sec *kms.Secret, v version) []outAttr {
	if !definedAt(attrAlwaysSensitive, v) {
		return nil
	}
	out := []outAttr{
		{name: attrAlwaysSensitive, val: boolItem(sec.AlwaysSensitive)},
		{name: attrNeverExtractable, val: boolItem(sec.NeverExtractable)},
	}
	if _, ok := sec.Attributes[kms.AttrSensitive]; !ok {
		out = append(out, outAttr{name: kms.AttrSensitive, val: boolItem(false)})
	}
	if _, ok := sec.Attributes[kms.AttrExtractable]; !ok {
		out = append(out, outAttr{name: kms.AttrExtractable, val: boolItem(true)})
	}
	return out
}

func boolItem(b bool) item {
	var n uint64
	if b {
		n = 1
	}
	return item{typ: ttlv.TypeBoolean, val: binary.BigEndian.AppendUint64(nil, n)}
}

func hasRNG(sec *kms.Secret, v version) bool { return sec.Generated && definedAt(attrRNG, v) }

// digestItem is the Digest of sec's material: SHA-256, and (from 1.1) the
// Key Format Type of the material hashed — the format a Get answers by
// default, so a client can check what it got.
func digestItem(sec *kms.Secret, v version) (item, bool) {
	d := sec.Digest
	if d == nil {
		return item{}, false
	}
	var w writer
	w.enum(kmip14.TagHashingAlgorithm, uint32(kmip14.HashingAlgorithmSHA_256))
	w.bytes(kmip14.TagDigestValue, d.SHA256)
	if f, ok := digestFormat(sec); ok && v.atLeast(1, 1) {
		w.enum(kmip14.TagKeyFormatType, f)
	}
	return item{typ: ttlv.TypeStructure, val: w.b}, true
}

func digestFormat(sec *kms.Secret) (uint32, bool) {
	switch sec.Type {
	case kms.Symmetric:
		return fmtRaw, true
	case kms.Certificate:
		return 0, false // a certificate has no Key Format Type
	}
	if f, ok := pemFormat(sec.Digest.PEMType); ok {
		return f, true
	}
	if it, ok := decodeValue(sec.Attributes[attrKeyFormatType]); ok {
		f, perr := it.enum()
		return f, perr == nil
	}
	return 0, false
}

// rngItem describes the generator behind Go's crypto/rand: in FIPS 140-3
// mode an AES-256 CTR_DRBG seeded by the kernel; otherwise the kernel's
// getrandom, a ChaCha20-based DRBG that is none of the DRBG Algorithms KMIP
// names, hence Unspecified.
func rngItem() item {
	var w writer
	w.enum(kmip14.TagRNGAlgorithm, uint32(kmip14.RNGAlgorithmDRBG))
	if fips140.Enabled() {
		w.enum(kmip14.TagCryptographicAlgorithm, uint32(kmip14.CryptographicAlgorithmAES))
		w.integer(kmip14.TagCryptographicLength, 256)
		w.enum(kmip14.TagDRBGAlgorithm, uint32(kmip14.DRBGAlgorithmCTR))
	} else {
		w.enum(kmip14.TagDRBGAlgorithm, uint32(kmip14.DRBGAlgorithmUnspecified))
	}
	return item{typ: ttlv.TypeStructure, val: w.b}
}

// serverAttrMatch is the Locate predicate of a Digest (its Hashing
// Algorithm and Digest Value; the Key Format Type is not compared, since it
// names a format, not the material) or a Random Number Generator value.
func serverAttrMatch(a attr) (func(*kms.Secret) bool, *opError) {
	if a.name == attrRNG {
		want := encodeValue(a.val)
		return func(s *kms.Secret) bool { return s.Generated && encodeValue(rngItem()) == want }, nil
	}
	if perr := a.val.structure(); perr != nil {
		return nil, perr
	}
	alg, ok := a.val.find(kmip14.TagHashingAlgorithm)
	val, ok2 := a.val.find(kmip14.TagDigestValue)
	if !ok || !ok2 {
		return nil, missingData("a Digest needs its Hashing Algorithm and Digest Value")
	}
	h, perr := alg.enum()
	if perr != nil {
		return nil, perr
	}
	want, perr := val.bytes()
	if perr != nil {
		return nil, perr
	}
	sha256 := h == uint32(kmip14.HashingAlgorithmSHA_256)
	return func(s *kms.Secret) bool { return sha256 && s.Digest != nil && bytes.Equal(s.Digest.SHA256, want) }, nil
}
