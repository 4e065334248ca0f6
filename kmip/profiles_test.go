package kmip

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kmip/pki"
)

// One test per OASIS KMIP server profile of issue 11. Each lists, by hand,
// the operations the profile requires and the behaviour and errors it
// checks, runs them against a real server, and compares with what Query
// Profiles claims: a claimed profile must pass; one that falls short must
// not be claimed, and the test names what is missing.
//
// The requirement lists are this project's reading of the KMIP Profiles
// v1.4 server profiles (the OASIS texts are not in the tree).

type serverProfile struct {
	name  string
	enum  kmip14.ProfileName // the 1.4 enumeration
	ops   []kmip14.Operation
	probe func(t *testing.T, e *env, c *client) (missing []string)
}

// baselineOps are the operations of the Baseline Server profile.
var baselineOps = []kmip14.Operation{
	kmip14.OperationLocate, kmip14.OperationCheck, kmip14.OperationGet, kmip14.OperationGetAttributes,
	kmip14.OperationGetAttributeList, kmip14.OperationAddAttribute, kmip14.OperationModifyAttribute,
	kmip14.OperationDeleteAttribute, kmip14.OperationActivate, kmip14.OperationRevoke,
	kmip14.OperationDestroy, kmip14.OperationQuery, kmip14.OperationDiscoverVersions,
}

func withOps(ops ...kmip14.Operation) []kmip14.Operation {
	return append(slices.Clone(baselineOps), ops...)
}

func runProfile(t *testing.T, p serverProfile, opts ...envOpt) {
	runProfileOn(t, p, newEnv(t, opts...))
}

func runProfileOn(t *testing.T, p serverProfile, e *env) {
	var missing []string
	for _, ver := range []version{{1, 4}, {2, 1}} {
		c := e.dial("profile")
		c.ver = ver
		listed := all(c.do(op{op: kmip14.OperationQuery, payload: []ttlv.Value{
			v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryOperations)}}).ok(0), kmip14.TagOperation)
		for _, o := range p.ops {
			// Served: answered with anything but Operation Not Supported
			// (a missing object or field is fine here), and listed by Query.
			r := c.do(byID(o, "no-such-object"))
			got := get(r.item(0), kmip14.TagResultReason)
			if got == ttlv.EnumValue(kmip14.ResultReasonOperationNotSupported) {
				missing = append(missing, fmt.Sprintf("%v at %d.%d", o, ver.major, ver.minor))
			}
			if !slices.ContainsFunc(listed, func(x ttlv.Value) bool { return x.Value == ttlv.EnumValue(o) }) {
				missing = append(missing, fmt.Sprintf("%v not in Query Operations at %d.%d", o, ver.major, ver.minor))
			}
		}
	}
	if p.probe != nil {
		c := e.dial("profile")
		missing = append(missing, p.probe(t, e, c)...)
	}
	c := e.dial("profile")
	var claimed bool
	for _, ver := range []version{{1, 4}, {2, 1}} {
		c.ver = ver
		q := c.do(op{op: kmip14.OperationQuery, payload: []ttlv.Value{v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryProfiles)}}).ok(0)
		in := false
		for _, pi := range all(q, kmip14.TagProfileInformation) {
			in = in || get(pi, kmip14.TagProfileName) == ttlv.EnumValue(p.enum)
		}
		if ver.v2() && in != claimed {
			t.Fatalf("%s: claimed at 1.4 %v, at 2.1 %v", p.name, claimed, in)
		}
		claimed = in
	}
	switch {
	case claimed && len(missing) > 0:
		t.Errorf("%s is claimed in Query Profiles but falls short: %v", p.name, missing)
	case !claimed && len(missing) == 0:
		t.Errorf("%s passes but Query Profiles does not claim it: add it to claimedProfiles", p.name)
	case !claimed:
		t.Logf("%s is not claimed; missing: %v", p.name, missing)
	}
}

// expect records a shortfall when item 0 of r is not answered as wanted
// (reason 0: success).
func expect(r *resp, reason uint32, what string, missing *[]string) {
	it := r.item(0)
	if reason == 0 {
		if get(it, kmip14.TagResultStatus) != ttlv.EnumValue(kmip14.ResultStatusSuccess) {
			*missing = append(*missing, fmt.Sprintf("%s (got %v: %v)", what, get(it, kmip14.TagResultReason), get(it, kmip14.TagResultMessage)))
		}
		return
	}
	if get(it, kmip14.TagResultReason) != ttlv.EnumValue(reason) {
		*missing = append(*missing, fmt.Sprintf("%s: reason %v, want 0x%x", what, get(it, kmip14.TagResultReason), reason))
	}
}

func TestProfileBaselineServer(t *testing.T) {
	runProfile(t, serverProfile{name: "Baseline Server (TLS v1.2)", enum: kmip14.ProfileNameBaselineServerTLSV1_2KMIPV1_4,
		ops: withOps(kmip14.OperationCreate, kmip14.OperationRegister),
		probe: func(t *testing.T, e *env, c *client) (missing []string) {
			id := uidOf(c.do(createAES(c.ver, 128)).ok(0))
			expect(c.do(byID(kmip14.OperationGet, "no-such-object")), uint32(kmip14.ResultReasonItemNotFound), "Get of an unknown object", &missing)
			o := e.dial("profile-other")
			expect(o.do(byID(kmip14.OperationGet, id)), uint32(kmip14.ResultReasonPermissionDenied), "another project's object", &missing)
			expect(c.do(op{op: kmip14.OperationCertify, payload: []ttlv.Value{v(tagUniqueIdentifier, id)}}),
				uint32(kmip14.ResultReasonOperationNotSupported), "an operation not served", &missing)
			expect(c.do(byID(kmip14.OperationAddAttribute, id, attr1("State", kmip14.StateActive))),
				reason(c.ver, kmip20.ResultReasonReadOnlyAttribute), "setting a server attribute", &missing)
			empty, err := ttlv.Marshal(st(tagRequestMessage, st(tagRequestHeader, st(kmip14.TagProtocolVersion,
				v(kmip14.TagProtocolVersionMajor, 1), v(kmip14.TagProtocolVersionMinor, 4)), v(kmip14.TagBatchCount, 1))))
			if err != nil {
				t.Fatal(err)
			}
			expect(decodeResp(t, c.roundTrip(empty)), uint32(kmip14.ResultReasonInvalidMessage), "a message with no batch item", &missing)
			// The Baseline attributes, Digest included.
			m := attrMap(t, c.ver, c.do(byID(kmip14.OperationGetAttributes, id)).ok(0))
			for _, n := range []string{"Unique Identifier", "Object Type", "Cryptographic Algorithm", "Cryptographic Length",
				"State", "Initial Date", "Last Change Date", "Digest"} {
				if _, ok := m[n]; !ok {
					missing = append(missing, "attribute "+n)
				}
			}
			// Test case TL-M-3: an all-attributes Get Attributes of a
			// generated key at 1.4 holds these two (kept out of it for
			// PyKMIP 0.10, docs/KMIP.md).
			if c.ver.atLeast(1, 4) {
				for _, n := range []string{"Original Creation Date", "Random Number Generator"} {
					if _, ok := m[n]; !ok {
						missing = append(missing, "attribute "+n+" in an all-attributes Get Attributes (TL-M-3)")
					}
				}
			}
			// TLS 1.2 with a client certificate.
			tc := e.clientTLS(clientCert(t, "profile", "user-profile", admin...))
			tc.MaxVersion = tls.VersionTLS12
			conn, err := tls.Dial("tcp", e.addr, tc)
			if err != nil {
				missing = append(missing, "TLS 1.2: "+err.Error())
			} else {
				conn.Close()
			}
			return missing
		}})
}

// The Basic Authentication Suite of Baseline Server Basic is TLS 1.0 with
// RSA key transport (TLS_RSA_WITH_AES_128_CBC_SHA).
func TestProfileBaselineServerBasic(t *testing.T) {
	runProfile(t, serverProfile{name: "Baseline Server Basic", enum: kmip14.ProfileNameBaselineServerBasicKMIPV1_4,
		ops: withOps(kmip14.OperationCreate, kmip14.OperationRegister),
		probe: func(t *testing.T, e *env, c *client) []string {
			tc := e.clientTLS(clientCert(t, "profile", "user-profile", admin...))
			tc.MinVersion, tc.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
			tc.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}
			conn, err := tls.Dial("tcp", e.addr, tc)
			if err != nil {
				return []string{"TLS 1.0 with TLS_RSA_WITH_AES_128_CBC_SHA: " + err.Error()}
			}
			conn.Close()
			return nil
		}})
}

func TestProfileSymmetricKeyLifecycleServer(t *testing.T) {
	runProfile(t, serverProfile{name: "Symmetric Key Lifecycle Server", enum: kmip14.ProfileNameSymmetricKeyLifecycleServerKMIPV1_4,
		ops: withOps(kmip14.OperationCreate, kmip14.OperationRegister),
		probe: func(t *testing.T, e *env, c *client) (missing []string) {
			for _, bits := range []int{128, 192, 256} {
				expect(c.do(createAES(c.ver, bits)), 0, fmt.Sprintf("Create AES-%d", bits), &missing)
			}
			id := uidOf(c.do(createAES(c.ver, 256)).ok(0))
			for _, f := range []kmip14.KeyFormatType{kmip14.KeyFormatTypeRaw, kmip14.KeyFormatTypeTransparentSymmetricKey} {
				expect(c.do(byID(kmip14.OperationGet, id, v(kmip14.TagKeyFormatType, f))), 0, "Get as "+f.String(), &missing)
			}
			reg := c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{
				v(tagObjectType, kmip14.ObjectTypeSymmetricKey), attrs(c.ver),
				st(kmip14.TagSymmetricKey, keyBlock(kmip14.KeyFormatTypeRaw, bytes.Repeat([]byte{3}, 16),
					v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmAES), v(kmip14.TagCryptographicLength, 128)))}})
			expect(reg, 0, "Register a symmetric key", &missing)
			expect(c.do(byID(kmip14.OperationActivate, id)), 0, "Activate", &missing)
			expect(c.do(byID(kmip14.OperationDestroy, id)), destroyActiveReason(c.ver), "Destroy of an Active key", &missing)
			expect(c.do(revoke(id, kmip14.RevocationReasonCodeCessationOfOperation)), 0, "Revoke", &missing)
			expect(c.do(byID(kmip14.OperationDestroy, id)), 0, "Destroy", &missing)
			expect(c.do(byID(kmip14.OperationGet, id)), uint32(kmip14.ResultReasonItemNotFound), "Get of a destroyed key", &missing)
			return missing
		}})
}

func TestProfileAsymmetricKeyLifecycleServer(t *testing.T) {
	runProfile(t, serverProfile{name: "Asymmetric Key Lifecycle Server", enum: kmip14.ProfileNameAsymmetricKeyLifecycleServerKMIPV1_4,
		ops: withOps(kmip14.OperationCreateKeyPair, kmip14.OperationRegister),
		probe: func(t *testing.T, e *env, c *client) (missing []string) {
			priv, pub := createPair(c, kmip14.CryptographicAlgorithmRSA, 2048, kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify)
			for _, f := range []kmip14.KeyFormatType{kmip14.KeyFormatTypePKCS_1, kmip14.KeyFormatTypePKCS_8, kmip14.KeyFormatTypeTransparentRSAPrivateKey} {
				expect(c.do(byID(kmip14.OperationGet, priv, v(kmip14.TagKeyFormatType, f))), 0, "Get private key as "+f.String(), &missing)
			}
			g := c.do(byID(kmip14.OperationGet, pub, v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeX_509))).ok(0)
			spki, _ := get(g, kmip14.TagPublicKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte)
			reg := c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{
				v(tagObjectType, kmip14.ObjectTypePublicKey), attrs(c.ver),
				st(kmip14.TagPublicKey, keyBlock(kmip14.KeyFormatTypeX_509, spki,
					v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmRSA), v(kmip14.TagCryptographicLength, 2048)))}})
			expect(reg, 0, "Register a public key (X.509)", &missing)
			m := attrMap(t, c.ver, c.do(byID(kmip14.OperationGetAttributes, priv)).ok(0))
			if _, ok := m["Link"]; !ok {
				missing = append(missing, "the pair's Link attributes")
			}
			expect(c.do(byID(kmip14.OperationActivate, priv)), 0, "Activate the private key", &missing)
			expect(c.do(byID(kmip14.OperationDestroy, priv)), destroyActiveReason(c.ver), "Destroy of an Active key", &missing)
			return missing
		}})
}

func TestProfileBasicCryptographicServer(t *testing.T) {
	runProfile(t, serverProfile{name: "Basic Cryptographic Server", enum: kmip14.ProfileNameBasicCryptographicServerKMIPV1_4,
		ops: withOps(kmip14.OperationCreate, kmip14.OperationEncrypt, kmip14.OperationDecrypt),
		probe: func(t *testing.T, e *env, c *client) (missing []string) {
			id := uidOf(c.do(createAES(c.ver, 256, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskEncrypt|kmip14.CryptographicUsageMaskDecrypt)).ok(0))
			expect(c.do(byID(kmip14.OperationEncrypt, id, gcmParams(), v(kmip14.TagData, []byte("x")))),
				reason(c.ver, kmip20.ResultReasonWrongKeyLifecycleState), "Encrypt with a Pre-Active key", &missing)
			c.do(byID(kmip14.OperationActivate, id)).ok(0)
			for _, mode := range []kmip14.BlockCipherMode{kmip14.BlockCipherModeCBC, kmip14.BlockCipherModeGCM, kmip14.BlockCipherModeCTR} {
				p := params(v(kmip14.TagBlockCipherMode, mode))
				if mode == kmip14.BlockCipherModeCBC {
					p = params(v(kmip14.TagBlockCipherMode, mode), v(kmip14.TagPaddingMethod, kmip14.PaddingMethodPKCS5))
				}
				r := c.do(byID(kmip14.OperationEncrypt, id, p, v(kmip14.TagData, []byte("profile data"))))
				expect(r, 0, "Encrypt AES-"+mode.String(), &missing)
				if len(r.items) == 1 && get(r.item(0), kmip14.TagResultStatus) == ttlv.EnumValue(kmip14.ResultStatusSuccess) {
					out := r.ok(0)
					dec := []ttlv.Value{p, v(kmip14.TagData, get(out, kmip14.TagData)), v(kmip14.TagIVCounterNonce, get(out, kmip14.TagIVCounterNonce))}
					if tag := get(out, kmip14.TagAuthenticatedEncryptionTag); tag != nil {
						dec = append(dec, v(kmip14.TagAuthenticatedEncryptionTag, tag))
					}
					back := c.do(byID(kmip14.OperationDecrypt, id, dec...))
					expect(back, 0, "Decrypt AES-"+mode.String(), &missing)
				}
			}
			// Test case CS-BC-M-7: a key made with Usage Limits.
			limits := st(kmip14.TagUsageLimits, v(kmip14.TagUsageLimitsTotal, int64(16)), v(kmip14.TagUsageLimitsUnit, kmip14.UsageLimitsUnitByte))
			expect(c.do(createAES(c.ver, 128, "Usage Limits", limits)), 0, "a key with Usage Limits (CS-BC-M-7)", &missing)
			mac := uidOf(c.do(createAES(c.ver, 256, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskMACGenerate)).ok(0))
			c.do(byID(kmip14.OperationActivate, mac)).ok(0)
			expect(c.do(byID(kmip14.OperationEncrypt, mac, gcmParams(), v(kmip14.TagData, []byte("x")))),
				reason(c.ver, kmip20.ResultReasonIncompatibleCryptographicUsageMask), "Encrypt with a key whose mask lacks Encrypt", &missing)
			return missing
		}})
}

// The Advanced Cryptographic Server: the Basic one's operations plus Sign,
// Signature Verify, MAC, MAC Verify and Hash, every one of them streamed
// (Init / Final Indicator, Correlation Value), and the mandatory cases
// CS-AC-M-1..8-14 and CS-AC-M-OAEP-*-14: the key's Cryptographic
// Parameters as defaults, the cases' vectors (OAEP's among them), and the
// Process Start and Protect Stop Dates. keyparams_test.go and
// cipherstream_test.go check the same in more depth against Go's crypto.
func TestProfileAdvancedCryptographicServer(t *testing.T) {
	runProfile(t, serverProfile{name: "Advanced Cryptographic Server", enum: kmip14.ProfileNameAdvancedCryptographicServerKMIPV1_4,
		ops: withOps(kmip14.OperationEncrypt, kmip14.OperationDecrypt, kmip14.OperationSign, kmip14.OperationSignatureVerify,
			kmip14.OperationMAC, kmip14.OperationMACVerify, kmip14.OperationHash),
		probe: func(t *testing.T, e *env, c *client) (missing []string) {
			c.ver = version{1, 4}
			id := uidOf(c.do(createAES(c.ver, 256)).ok(0))
			c.do(byID(kmip14.OperationActivate, id)).ok(0)
			msg := []byte("a message in three parts for the stream")
			for _, mode := range []kmip14.BlockCipherMode{kmip14.BlockCipherModeCBC, kmip14.BlockCipherModeCTR, kmip14.BlockCipherModeGCM} {
				p := params(v(kmip14.TagBlockCipherMode, mode))
				ct, outs, tag, _ := streamCrypt(t, c, kmip14.OperationEncrypt, id, p, [][]byte{msg[:5], msg[5:20], msg[20:]}, nil)
				pt, _, _, r := streamCryptTag(t, c, kmip14.OperationDecrypt, id, p, [][]byte{ct[:7], ct[7:]}, outs.iv, tag)
				if !bytes.Equal(pt, msg) {
					missing = append(missing, fmt.Sprintf("streamed Encrypt and Decrypt in %v (%v)", mode, r.item(0)))
				}
			}
			streamed := func(o kmip14.Operation, key string, first []ttlv.Value, last ...ttlv.Value) *resp {
				r := c.do(byID(o, key, append(first, v(kmip14.TagInitIndicator, true))...))
				corr := get(r.item(0), kmip14.TagResponsePayload, kmip14.TagCorrelationValue)
				if corr == nil {
					return r
				}
				return c.do(op{op: o, payload: append([]ttlv.Value{v(kmip14.TagCorrelationValue, corr)}, append(last, v(kmip14.TagFinalIndicator, true))...)})
			}
			data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16}

			// CS-AC-M-7: Hash, here streamed.
			sha := params(v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256))
			h := get(streamed(kmip14.OperationHash, "", []ttlv.Value{sha, v(kmip14.TagData, data[:9])}, v(kmip14.TagData, data[9:])).item(0), kmip14.TagResponsePayload, kmip14.TagData)
			if fmt.Sprintf("%x", h) != "ad41233d22cf9322e3a7ff49a13da434797abed3bab80950a1a0d4e582b7ea72" {
				missing = append(missing, "CS-AC-M-7 streamed SHA-256")
			}
			// CS-AC-M-4/5: MAC and MAC Verify with the case's key, whose
			// Cryptographic Parameters name HMAC-SHA256, streamed.
			mk := oasisCase(t, "CS-AC-M-4-14.xml", "KeyMaterial")[0]
			hm := uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, kmip14.ObjectTypeSymmetricKey),
				attrs(c.ver, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskMACGenerate|kmip14.CryptographicUsageMaskMACVerify,
					"Cryptographic Parameters", params(v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmHMAC_SHA256)),
					"Activation Date", time.Now().Add(-time.Hour)),
				st(kmip14.TagSymmetricKey, keyBlock(kmip14.KeyFormatTypeRaw, mk, v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmAES),
					v(kmip14.TagCryptographicLength, 128)))}}).ok(0))
			mac := get(streamed(kmip14.OperationMAC, hm, []ttlv.Value{v(kmip14.TagData, data[:3])}, v(kmip14.TagData, data[3:])).item(0), kmip14.TagResponsePayload, kmip14.TagMACData)
			if fmt.Sprintf("%x", mac) != "c911e78196d64c30f631bb079ea37b97a95936d4da764d6a171df030c895ecf9" {
				missing = append(missing, "CS-AC-M-4 streamed MAC")
			}
			ok := streamed(kmip14.OperationMACVerify, hm, []ttlv.Value{v(kmip14.TagData, data[:3])}, v(kmip14.TagData, data[3:]), v(kmip14.TagMACData, mac))
			if get(ok.item(0), kmip14.TagResponsePayload, kmip14.TagValidityIndicator) != ttlv.EnumValue(kmip14.ValidityIndicatorValid) {
				missing = append(missing, "CS-AC-M-5 streamed MAC Verify")
			}
			// CS-AC-M-2: the case's signature verifies with its public key
			// and the key's PSS parameters; a changed byte does not.
			pub := oasisCase(t, "CS-AC-M-2-14.xml", "KeyMaterial")[0]
			sig := oasisCase(t, "CS-AC-M-2-14.xml", "SignatureData")[0]
			pss := params(v(kmip14.TagPaddingMethod, kmip14.PaddingMethodPSS), v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256),
				v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmRSA))
			registerRSA := func(typ kmip14.ObjectType, tag ttlv.Tag, material []byte, mask kmip14.CryptographicUsageMask, extra ...any) string {
				kv := append([]any{"Cryptographic Usage Mask", mask, "Cryptographic Parameters", pss, "Activation Date", time.Now().Add(-time.Hour)}, extra...)
				return uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, typ), attrs(c.ver, kv...),
					st(tag, keyBlock(kmip14.KeyFormatTypePKCS_1, material, v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmRSA),
						v(kmip14.TagCryptographicLength, 2048)))}}).ok(0))
			}
			pk := registerRSA(kmip14.ObjectTypePublicKey, kmip14.TagPublicKey, pub, kmip14.CryptographicUsageMaskVerify)
			for i, want := range []kmip14.ValidityIndicator{kmip14.ValidityIndicatorValid, kmip14.ValidityIndicatorInvalid} {
				d := bytes.Clone(data)
				d[0] ^= byte(i) * 0xfe
				r := c.do(byID(kmip14.OperationSignatureVerify, pk, v(kmip14.TagData, d), v(kmip14.TagSignatureData, sig)))
				if get(r.item(0), kmip14.TagResponsePayload, kmip14.TagValidityIndicator) != ttlv.EnumValue(want) {
					missing = append(missing, fmt.Sprintf("CS-AC-M-2 verify: want %v", want))
				}
			}
			// CS-AC-M-1/3: Sign with the key's parameters; streamed
			// Verify with them is Valid, with SHA-1 Invalid.
			prv := oasisCase(t, "CS-AC-M-OAEP-10-14.xml", "KeyMaterial")[0]
			sk := registerRSA(kmip14.ObjectTypePrivateKey, kmip14.TagPrivateKey, prv, kmip14.CryptographicUsageMaskSign|kmip14.CryptographicUsageMaskVerify)
			s := get(c.do(byID(kmip14.OperationSign, sk, v(kmip14.TagData, data))).item(0), kmip14.TagResponsePayload, kmip14.TagSignatureData)
			for hash, want := range map[kmip14.HashingAlgorithm]kmip14.ValidityIndicator{
				kmip14.HashingAlgorithmSHA_256: kmip14.ValidityIndicatorValid, kmip14.HashingAlgorithmSHA_1: kmip14.ValidityIndicatorInvalid} {
				p := params(v(kmip14.TagPaddingMethod, kmip14.PaddingMethodPSS), v(kmip14.TagHashingAlgorithm, hash))
				r := streamed(kmip14.OperationSignatureVerify, sk, []ttlv.Value{p, v(kmip14.TagData, data[:4])}, v(kmip14.TagData, data[4:]), v(kmip14.TagSignatureData, s))
				if get(r.item(0), kmip14.TagResponsePayload, kmip14.TagValidityIndicator) != ttlv.EnumValue(want) {
					missing = append(missing, fmt.Sprintf("CS-AC-M-3 verify with %v: want %v", hash, want))
				}
			}
			// CS-AC-M-OAEP-1..10 (keyparams_test.go).
			missing = append(missing, oaepCases(t, c)...)
			// CS-AC-M-8: past its Protect Stop Date a key does not sign;
			// before its Process Start Date it does not verify.
			dates := []any{"Process Start Date", time.Now().Add(time.Hour), "Protect Stop Date", time.Now().Add(-time.Hour)}
			sk8 := registerRSA(kmip14.ObjectTypePrivateKey, kmip14.TagPrivateKey, prv, kmip14.CryptographicUsageMaskSign, dates...)
			expect(c.do(byID(kmip14.OperationSign, sk8, v(kmip14.TagData, data))), uint32(kmip14.ResultReasonPermissionDenied),
				"CS-AC-M-8 Sign past the Protect Stop Date", &missing)
			pk8 := registerRSA(kmip14.ObjectTypePublicKey, kmip14.TagPublicKey, pub, kmip14.CryptographicUsageMaskVerify, dates...)
			expect(c.do(byID(kmip14.OperationSignatureVerify, pk8, v(kmip14.TagData, data), v(kmip14.TagSignatureData, sig))),
				uint32(kmip14.ResultReasonPermissionDenied), "CS-AC-M-8 Verify before the Process Start Date", &missing)
			return missing
		}})
}

func TestProfileRNGCryptographicServer(t *testing.T) {
	runProfile(t, serverProfile{name: "RNG Cryptographic Server", enum: kmip14.ProfileNameRNGCryptographicServerKMIPV1_4,
		ops: withOps(kmip14.OperationRNGRetrieve, kmip14.OperationRNGSeed),
		probe: func(t *testing.T, e *env, c *client) (missing []string) {
			r := c.do(op{op: kmip14.OperationRNGRetrieve, payload: []ttlv.Value{v(kmip14.TagDataLength, 32)}})
			expect(r, 0, "RNG Retrieve", &missing)
			if b, _ := get(r.item(0), tagResponsePayload, kmip14.TagData).([]byte); len(b) != 32 {
				missing = append(missing, fmt.Sprintf("RNG Retrieve of 32 bytes gave %d", len(b)))
			}
			expect(c.do(op{op: kmip14.OperationRNGSeed, payload: []ttlv.Value{v(kmip14.TagData, bytes.Repeat([]byte{1}, 32))}}), 0, "RNG Seed", &missing)
			q := c.do(op{op: kmip14.OperationQuery, payload: []ttlv.Value{v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryRNGs)}}).ok(0)
			if get(q, kmip14.TagRNGParameters, kmip14.TagRNGAlgorithm) == nil {
				missing = append(missing, "Query RNGs")
			}
			return missing
		}})
}

func TestProfileSymmetricKeyFoundryServer(t *testing.T) {
	runProfile(t, serverProfile{name: "Symmetric Key Foundry Server", enum: kmip14.ProfileNameSymmetricKeyFoundryServerKMIPV1_4,
		ops: withOps(kmip14.OperationCreate),
		probe: func(t *testing.T, e *env, c *client) (missing []string) {
			for _, bits := range []int{128, 192, 256} {
				r := c.do(createAES(c.ver, bits, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskEncrypt|kmip14.CryptographicUsageMaskDecrypt))
				expect(r, 0, fmt.Sprintf("Create AES-%d with a usage mask", bits), &missing)
				if len(missing) > 0 {
					continue
				}
				id := uidOf(r.ok(0))
				m := attrMap(t, c.ver, c.do(byID(kmip14.OperationGetAttributes, id)).ok(0))
				if m["Cryptographic Length"] != int32(bits) || m["State"] != ttlv.EnumValue(kmip14.StatePreActive) {
					missing = append(missing, fmt.Sprintf("AES-%d attributes %v", bits, m))
				}
				expect(c.do(byID(kmip14.OperationActivate, id)), 0, "Activate", &missing)
				expect(c.do(byID(kmip14.OperationGet, id)), 0, "Get", &missing)
			}
			return missing
		}})
}

// Suite B (RFC 6460 as KMIP Profiles v1.4 uses it): TLS 1.2 only,
// ECDHE-ECDSA with AES-GCM, ECDHE and every certificate on P-256/P-384
// (minLOS 128) or P-384 with the 256-bit suite only (minLOS 192). A server
// claims the profile only in that mode: the default server (RSA CA) and a
// server in the other mode must fall short and not claim it.

var (
	ecOnce sync.Once
	ecCA   *pki.CA
	ecErr  error
)

// sharedECCA is an ECDSA P-384 CA with its P-256, P-384 and RSA server
// certificates, under the shared CA's directory.
func sharedECCA(t testing.TB) *pki.CA {
	t.Helper()
	sharedCA(t)
	ecOnce.Do(func() {
		ecCA, _, ecErr = pki.LoadOrCreateWith(filepath.Join(caDir, "ecdsa"), pki.Options{CAKeyType: "ecdsa"})
		hosts := []string{"127.0.0.1", "localhost"}
		if ecErr == nil {
			_, _, _, ecErr = ecCA.EnsureServer(hosts)
		}
		if ecErr == nil {
			_, _, _, ecErr = ecCA.EnsureP384Server(hosts)
		}
	})
	if ecErr != nil {
		t.Fatal(ecErr)
	}
	return ecCA
}

// suiteBEnv is a server in a Suite B mode, given every server certificate
// of the ECDSA CA (RSA first: the mode must set it aside) as a deployment
// is.
func suiteBEnv(t testing.TB, mode SuiteB) *env {
	ca := sharedECCA(t)
	load := func(cert, key string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(ca.Dir(), cert), filepath.Join(ca.Dir(), key))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ids, err := NewIdentities(ca.Certificate(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, Config{Service: newService(t), Identities: ids, TLS: TLSOptions{SuiteB: mode},
		Certificate: load(pki.ServerFile, pki.ServerKeyFile),
		ExtraCertificates: []tls.Certificate{
			load(pki.ECDSAServerFile, pki.ECDSAServerKeyFile), load(pki.P384ServerFile, pki.P384ServerKeyFile)},
	})
	e.ca, e.keyType = ca, "ecdsa-p384"
	return e
}

// suiteBProbe connects as a Suite B client of the mode would, with every
// suite and curve the mode requires, checks the server's chain and runs the
// OASIS test case SUITEB_128-M-1-14 / SUITEB_192-M-1-14 (Query Operations
// and Objects) over the connection.
func suiteBProbe(mode SuiteB) func(t *testing.T, e *env, c *client) []string {
	return func(t *testing.T, e *env, _ *client) (missing []string) {
		curves := map[SuiteB][]tls.CurveID{SuiteB128: {tls.CurveP256, tls.CurveP384}, SuiteB192: {tls.CurveP384}}[mode]
		suites := map[SuiteB][]uint16{
			SuiteB128: {tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
			SuiteB192: {tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}[mode]
		keyTypes := map[SuiteB][]string{SuiteB128: {"ecdsa", "ecdsa-p384"}, SuiteB192: {"ecdsa-p384"}}[mode]
		for _, suite := range suites {
			for _, curve := range curves {
				for _, kt := range keyTypes {
					what := fmt.Sprintf("TLS 1.2, %s, %v, %s client", tls.CipherSuiteName(suite), curve, kt)
					tc := e.clientTLS(issuedCert(t, e.authority(), kt, "profile", "user-profile", admin...))
					tc.MaxVersion, tc.CipherSuites, tc.CurvePreferences = tls.VersionTLS12, []uint16{suite}, []tls.CurveID{curve}
					conn, err := tls.Dial("tcp", e.addr, tc)
					if err != nil {
						missing = append(missing, fmt.Sprintf("%s: %v", what, err))
						continue
					}
					missing = append(missing, checkSuiteBChain(mode, conn.ConnectionState().PeerCertificates)...)
					q := (&client{t: t, c: conn, ver: version{1, 4}}).do(op{op: kmip14.OperationQuery, payload: []ttlv.Value{
						v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryOperations),
						v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryObjects)}})
					expect(q, 0, what+": Query", &missing)
					if ops := all(q.item(0), kmip14.TagOperation, kmip14.TagResponsePayload); len(ops) < len(baselineOps) {
						missing = append(missing, fmt.Sprintf("%s: Query lists %d operations", what, len(ops)))
					}
					conn.Close()
				}
			}
		}
		return append(missing, suiteBRefusals(t, e, mode)...)
	}
}

// suiteBRefusals: what is not Suite B at the mode's level must not get a
// KMIP answer.
func suiteBRefusals(t *testing.T, e *env, mode SuiteB) (missing []string) {
	gcm128, gcm256 := tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
	type refusal struct {
		what    string
		keyType string
		set     func(*tls.Config)
	}
	tls12 := func(suite uint16, curve tls.CurveID) func(*tls.Config) {
		return func(c *tls.Config) {
			c.MaxVersion, c.CipherSuites, c.CurvePreferences = tls.VersionTLS12, []uint16{suite}, []tls.CurveID{curve}
		}
	}
	cases := []refusal{
		{"an RSA client certificate", "rsa", tls12(gcm256, tls.CurveP384)},
		{"a CBC suite", "ecdsa-p384", tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.CurveP384)},
		{"ChaCha20-Poly1305", "ecdsa-p384", tls12(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.CurveP384)},
		{"ECDHE on X25519", "ecdsa-p384", tls12(gcm256, tls.X25519)},
		{"TLS 1.1", "ecdsa-p384", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS11, tls.VersionTLS11 }},
		{"TLS 1.3", "ecdsa-p384", func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }},
	}
	if mode == SuiteB192 {
		cases = append(cases,
			refusal{"AES-128-GCM at minLOS 192", "ecdsa-p384", tls12(gcm128, tls.CurveP384)},
			refusal{"ECDHE on P-256 at minLOS 192", "ecdsa-p384", tls12(gcm256, tls.CurveP256)},
			refusal{"a P-256 client certificate at minLOS 192", "ecdsa", tls12(gcm256, tls.CurveP384)})
	}
	query := requestMsg(t, version{1, 4}, nil, op{op: kmip14.OperationQuery, payload: []ttlv.Value{
		v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryOperations)}})
	for _, r := range cases {
		tc := e.clientTLS(issuedCert(t, e.authority(), r.keyType, "profile", "user-profile", admin...))
		r.set(tc)
		conn, err := tls.Dial("tcp", e.addr, tc)
		if err != nil {
			continue // refused in the handshake
		}
		// TLS 1.3 checks the client certificate after the client's Finished:
		// refused then means no answer.
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(query); err == nil {
			if _, err := readMessage(conn); err == nil {
				missing = append(missing, "accepted "+r.what)
			}
		}
		conn.Close()
	}
	return missing
}

// checkSuiteBChain: every certificate ECDSA on an allowed curve, signed
// with an allowed ECDSA hash.
func checkSuiteBChain(mode SuiteB, chain []*x509.Certificate) (missing []string) {
	for _, cert := range chain {
		k, ok := cert.PublicKey.(*ecdsa.PublicKey)
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s: a %v key", cert.Subject.CommonName, cert.PublicKeyAlgorithm))
		case k.Curve != elliptic.P384() && (mode == SuiteB192 || k.Curve != elliptic.P256()):
			missing = append(missing, fmt.Sprintf("%s: on %s", cert.Subject.CommonName, k.Curve.Params().Name))
		}
		if cert.SignatureAlgorithm != x509.ECDSAWithSHA384 && (mode == SuiteB192 || cert.SignatureAlgorithm != x509.ECDSAWithSHA256) {
			missing = append(missing, fmt.Sprintf("%s: signed with %v", cert.Subject.CommonName, cert.SignatureAlgorithm))
		}
	}
	return missing
}

// withECDSACert adds the RSA CA's ECDSA server certificate, as a default
// deployment does: the handshake works, the chain is not Suite B.
func withECDSACert(t *testing.T) envOpt {
	ca := sharedCA(t)
	cert, err := tls.LoadX509KeyPair(filepath.Join(ca.Dir(), pki.ECDSAServerFile), filepath.Join(ca.Dir(), pki.ECDSAServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config) { c.ExtraCertificates = append(c.ExtraCertificates, cert) }
}

func testSuiteBProfile(t *testing.T, mode, other SuiteB, name string, enum kmip14.ProfileName) {
	p := serverProfile{name: name, enum: enum, ops: baselineOps, probe: suiteBProbe(mode)}
	t.Run("suiteb-mode", func(t *testing.T) {
		e := suiteBEnv(t, mode)
		runProfileOn(t, p, e)
		if !slices.Contains(queryProfiles(t, e), enum) {
			t.Fatalf("a server in Suite B mode %d does not claim %s", mode, name)
		}
	})
	// Elsewhere it falls short and is not claimed (runProfileOn fails
	// the test if it were).
	t.Run("default", func(t *testing.T) { runProfile(t, p, withECDSACert(t)) })
	t.Run(fmt.Sprintf("suiteb-%d", other), func(t *testing.T) { runProfileOn(t, p, suiteBEnv(t, other)) })
}

func queryProfiles(t *testing.T, e *env) (out []kmip14.ProfileName) {
	q := e.dial("profile").do(op{op: kmip14.OperationQuery, payload: []ttlv.Value{v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryProfiles)}}).ok(0)
	for _, pi := range all(q, kmip14.TagProfileInformation) {
		out = append(out, kmip14.ProfileName(get(pi, kmip14.TagProfileName).(ttlv.EnumValue)))
	}
	return out
}

func TestProfileSuiteBMinLOS128Server(t *testing.T) {
	testSuiteBProfile(t, SuiteB128, SuiteB192, "Suite B minLOS_128 Server", kmip14.ProfileNameSuiteBMinLOS_128ServerKMIPV1_4)
}

func TestProfileSuiteBMinLOS192Server(t *testing.T) {
	testSuiteBProfile(t, SuiteB192, SuiteB128, "Suite B minLOS_192 Server", kmip14.ProfileNameSuiteBMinLOS_192ServerKMIPV1_4)
}
