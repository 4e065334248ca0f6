package kmip

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

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
	e := newEnv(t, opts...)
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
			mac := uidOf(c.do(createAES(c.ver, 256, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskMACGenerate)).ok(0))
			c.do(byID(kmip14.OperationActivate, mac)).ok(0)
			expect(c.do(byID(kmip14.OperationEncrypt, mac, gcmParams(), v(kmip14.TagData, []byte("x")))),
				reason(c.ver, kmip20.ResultReasonIncompatibleCryptographicUsageMask), "Encrypt with a key whose mask lacks Encrypt", &missing)
			return missing
		}})
}

func TestProfileAdvancedCryptographicServer(t *testing.T) {
	runProfile(t, serverProfile{name: "Advanced Cryptographic Server", enum: kmip14.ProfileNameAdvancedCryptographicServerKMIPV1_4,
		ops: withOps(kmip14.OperationEncrypt, kmip14.OperationDecrypt, kmip14.OperationSign, kmip14.OperationSignatureVerify,
			kmip14.OperationMAC, kmip14.OperationMACVerify, kmip14.OperationHash),
		probe: func(t *testing.T, e *env, c *client) (missing []string) {
			id := uidOf(c.do(createAES(c.ver, 256)).ok(0))
			c.do(byID(kmip14.OperationActivate, id)).ok(0)
			// Streaming Encrypt and Decrypt (Init / Final Indicator).
			r := c.do(byID(kmip14.OperationEncrypt, id, params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeCBC),
				v(kmip14.TagPaddingMethod, kmip14.PaddingMethodPKCS5)), v(kmip14.TagData, []byte("part one")), v(kmip14.TagInitIndicator, true)))
			expect(r, 0, "streaming Encrypt (Init Indicator)", &missing)
			r = c.do(byID(kmip14.OperationMAC, id, v(kmip14.TagData, []byte("part one")), v(kmip14.TagInitIndicator, true)))
			expect(r, 0, "streaming MAC (Init Indicator)", &missing)
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

// Suite B: TLS 1.2 with ECDHE-ECDSA, AES-GCM and an ECDSA certificate chain
// on P-256 (minLOS 128) or P-384 (minLOS 192).
func suiteB(suite uint16, curve tls.CurveID, sigAlg x509.SignatureAlgorithm) func(t *testing.T, e *env, c *client) []string {
	return func(t *testing.T, e *env, c *client) (missing []string) {
		tc := e.clientTLS(clientCert(t, "profile", "user-profile", admin...))
		tc.MaxVersion, tc.CipherSuites, tc.CurvePreferences = tls.VersionTLS12, []uint16{suite}, []tls.CurveID{curve}
		conn, err := tls.Dial("tcp", e.addr, tc)
		if err != nil {
			return []string{fmt.Sprintf("TLS 1.2 with %s on %v: %v", tls.CipherSuiteName(suite), curve, err)}
		}
		defer conn.Close()
		for _, cert := range conn.ConnectionState().PeerCertificates {
			if cert.SignatureAlgorithm != sigAlg {
				missing = append(missing, fmt.Sprintf("an ECDSA chain: %s is signed with %v, want %v", cert.Subject.CommonName, cert.SignatureAlgorithm, sigAlg))
			}
		}
		return missing
	}
}

// withECDSACert adds the server's ECDSA certificate, as a deployment does.
func withECDSACert(t *testing.T) envOpt {
	ca := sharedCA(t)
	cert, err := tls.LoadX509KeyPair(filepath.Join(ca.Dir(), pki.ECDSAServerFile), filepath.Join(ca.Dir(), pki.ECDSAServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config) { c.ExtraCertificates = append(c.ExtraCertificates, cert) }
}

func TestProfileSuiteBMinLOS128Server(t *testing.T) {
	runProfile(t, serverProfile{name: "Suite B minLOS_128 Server", enum: kmip14.ProfileNameSuiteBMinLOS_128ServerKMIPV1_4,
		ops:   baselineOps,
		probe: suiteB(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.CurveP256, x509.ECDSAWithSHA256)}, withECDSACert(t))
}

func TestProfileSuiteBMinLOS192Server(t *testing.T) {
	runProfile(t, serverProfile{name: "Suite B minLOS_192 Server", enum: kmip14.ProfileNameSuiteBMinLOS_192ServerKMIPV1_4,
		ops:   baselineOps,
		probe: suiteB(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.CurveP384, x509.ECDSAWithSHA384)}, withECDSACert(t))
}
