package kmip

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// member reads a member of a structure value from attrMap.
func member(x any, tag ttlv.Tag) any { return get(ttlv.Value{Value: x}, tag) }

// TestDigestAndRNG: the server computes Digest (SHA-256 of the material a
// Get answers, with its Key Format Type from 1.1) and states its Random
// Number Generator (from 1.3) on the objects it generated; clients cannot
// set either.
func TestDigestAndRNG(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 0}, {1, 2}, {1, 4}, {2, 0}, {2, 1}} {
		t.Run(fmt.Sprintf("%d.%d", ver.major, ver.minor), func(t *testing.T) {
			c := e.dial(fmt.Sprintf("digest%d%d", ver.major, ver.minor))
			c.ver = ver
			getAttrs := func(id string) map[string]any {
				t.Helper()
				return attrMap(t, ver, c.do(byID(kmip14.OperationGetAttributes, id)).ok(0))
			}
			material := func(id string, objTag ttlv.Tag) []byte {
				t.Helper()
				g := c.do(byID(kmip14.OperationGet, id)).ok(0)
				b, _ := get(g, objTag, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte)
				return b
			}
			checkDigest := func(id string, objTag ttlv.Tag, format kmip14.KeyFormatType) {
				t.Helper()
				d, ok := getAttrs(id)["Digest"]
				if !ok {
					t.Fatalf("%s has no Digest", id)
				}
				sum := sha256.Sum256(material(id, objTag))
				if member(d, kmip14.TagHashingAlgorithm) != ttlv.EnumValue(kmip14.HashingAlgorithmSHA_256) ||
					!bytes.Equal(member(d, kmip14.TagDigestValue).([]byte), sum[:]) {
					t.Fatalf("Digest %v, want SHA-256 %x", d, sum)
				}
				got := member(d, kmip14.TagKeyFormatType)
				if ver.atLeast(1, 1) != (got == ttlv.EnumValue(format)) {
					t.Fatalf("Digest Key Format Type %v at %v, want %v", got, ver, format)
				}
			}
			hasRNG := func(id string) bool {
				t.Helper()
				// Named: the all-attributes answer leaves it out for PyKMIP.
				name := v(tagAttributeName, "Random Number Generator")
				if ver.v2() {
					name = v(tagAttributeRef, ttlv.EnumValue(kmip14.TagRandomNumberGenerator))
				}
				m := attrMap(t, ver, c.do(byID(kmip14.OperationGetAttributes, id, name)).ok(0))
				r, ok := m["Random Number Generator"]
				if ok && member(r, kmip14.TagRNGAlgorithm) != ttlv.EnumValue(kmip14.RNGAlgorithmDRBG) {
					t.Fatalf("Random Number Generator %v", r)
				}
				return ok
			}

			// A created key: Digest, and the RNG from 1.3.
			key := uidOf(c.do(createAES(ver, 256)).ok(0))
			checkDigest(key, kmip14.TagSymmetricKey, kmip14.KeyFormatTypeRaw)
			if hasRNG(key) != ver.atLeast(1, 3) {
				t.Fatalf("RNG on a created key at %v", ver)
			}
			// Locate by Digest: the key whose material it hashes, nothing else.
			sum := sha256.Sum256(material(key, kmip14.TagSymmetricKey))
			for want, val := range map[int][]byte{1: sum[:], 0: make([]byte, 32)} {
				d := st(kmip14.TagDigest, v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256), v(kmip14.TagDigestValue, val))
				r := c.do(op{op: kmip14.OperationLocate, payload: []ttlv.Value{attr1OrAttrs(ver, "Digest", d)}}).ok(0)
				if u := all(r, tagUniqueIdentifier); len(u) != want || (want == 1 && u[0].Value != key) {
					t.Fatalf("Locate by Digest: %v", u)
				}
			}
			// A pair: both halves, hashed in the DER a Get answers.
			priv, pub := createPair(c, kmip14.CryptographicAlgorithmEC, 256, kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify)
			checkDigest(priv, kmip14.TagPrivateKey, kmip14.KeyFormatTypePKCS_8)
			checkDigest(pub, kmip14.TagPublicKey, kmip14.KeyFormatTypeX_509)
			// RSA keys: Get answers PKCS#1 by default, and the Digest hashes it.
			rpriv, rpub := createPair(c, kmip14.CryptographicAlgorithmRSA, 2048, kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify)
			checkDigest(rpriv, kmip14.TagPrivateKey, kmip14.KeyFormatTypePKCS_1)
			checkDigest(rpub, kmip14.TagPublicKey, kmip14.KeyFormatTypePKCS_1)
			if hasRNG(pub) != ver.atLeast(1, 3) {
				t.Fatalf("RNG on a generated public key at %v", ver)
			}
			// A registered key: Digest, no RNG (the server did not make it).
			reg := uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{
				v(tagObjectType, kmip14.ObjectTypeSymmetricKey), attrs(ver),
				st(kmip14.TagSymmetricKey, keyBlock(kmip14.KeyFormatTypeRaw, bytes.Repeat([]byte{9}, 16),
					v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmAES), v(kmip14.TagCryptographicLength, 128)))}}).ok(0))
			checkDigest(reg, kmip14.TagSymmetricKey, kmip14.KeyFormatTypeRaw)
			if hasRNG(reg) {
				t.Fatal("a registered key claims the server's RNG")
			}
			// Secret Data (a passphrase) has no digest: it could be guessed offline.
			pw := uidOf(c.do(registerSecret(ver, []byte("hunter2"))).ok(0))
			if _, ok := getAttrs(pw)["Digest"]; ok {
				t.Fatal("a passphrase has a Digest")
			}
			// Both are listed by name, and only the server sets them.
			list := c.do(byID(kmip14.OperationGetAttributeList, key)).ok(0)
			if !ver.v2() {
				var names []string
				for _, n := range all(list, tagAttributeName) {
					names = append(names, n.Value.(string))
				}
				if !slices.Contains(names, "Digest") || slices.Contains(names, "Random Number Generator") != ver.atLeast(1, 3) {
					t.Fatalf("attribute list %v", names)
				}
			}
			digest := st(kmip14.TagDigest, v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256), v(kmip14.TagDigestValue, []byte{1}))
			if ver.v2() {
				c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), key, st(kmip20.TagNewAttribute, digest))).
					failed(0, uint32(kmip20.ResultReasonReadOnlyAttribute))
			} else {
				c.do(byID(kmip14.OperationAddAttribute, key, attr1("Digest", digest))).
					failed(0, reason(ver, kmip20.ResultReasonReadOnlyAttribute))
			}
		})
	}
}
