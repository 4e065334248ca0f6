package kmip

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

var allVersions = []version{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {1, 4}, {2, 0}, {2, 1}}

// reason returns the reason code a client of ver receives.
func reason(ver version, r kmip20.ResultReason) uint32 { return reasonFor(ver, r) }

// destroyActiveReason: Destroy of an Active object is Permission Denied at
// 1.x (KMIP 1.4 test cases SKLC-M-2, AKLC-M-2), Wrong Key Lifecycle State
// at 2.x.
func destroyActiveReason(ver version) uint32 {
	if ver.v2() {
		return uint32(kmip20.ResultReasonWrongKeyLifecycleState)
	}
	return uint32(kmip14.ResultReasonPermissionDenied)
}

func TestSymmetricKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	for _, ver := range allVersions {
		t.Run(fmt.Sprintf("%d.%d", ver.major, ver.minor), func(t *testing.T) {
			c := e.dial("lifecycle")
			c.ver = ver
			for _, bits := range []int{128, 192, 256, 512} {
				r := c.do(createAES(ver, bits, "Name", nameVal(fmt.Sprintf("k%d-%d%d", bits, ver.major, ver.minor))))
				p := r.ok(0)
				if got := get(p, tagObjectType); got != ttlv.EnumValue(kmip14.ObjectTypeSymmetricKey) {
					t.Fatalf("object type %v", got)
				}
				id := uidOf(p)
				// Get, raw: the key block names algorithm and length.
				kb := c.do(byID(kmip14.OperationGet, id)).ok(0)
				mat, _ := get(kb, kmip14.TagSymmetricKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte)
				if len(mat) != bits/8 {
					t.Fatalf("%d-bit key has %d bytes", bits, len(mat))
				}
				if l := get(kb, kmip14.TagSymmetricKey, kmip14.TagKeyBlock, kmip14.TagCryptographicLength); l != int32(bits) {
					t.Fatalf("length %v", l)
				}
				// Transparent Symmetric Key carries the same bytes.
				tk := c.do(byID(kmip14.OperationGet, id, v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeTransparentSymmetricKey))).ok(0)
				k2, _ := get(tk, kmip14.TagSymmetricKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial, kmip14.TagKey).([]byte)
				if !bytes.Equal(mat, k2) {
					t.Fatal("transparent key differs from raw key")
				}
				// The service sees the same material and a pre-active object.
				sec, pt, err := e.svc.GetPayload(context.Background(), who("lifecycle"), id)
				if err != nil || !bytes.Equal(pt, mat) || sec.State != kms.PreActive || sec.Type != kms.Symmetric {
					t.Fatalf("service view: %v %v", sec, err)
				}
			}
			id := uidOf(c.do(createAES(ver, 256)).ok(0))
			c.do(byID(kmip14.OperationActivate, id)).ok(0)
			c.do(byID(kmip14.OperationActivate, id)).failed(0, reason(ver, kmip20.ResultReasonWrongKeyLifecycleState))
			c.do(byID(kmip14.OperationDestroy, id)).failed(0, destroyActiveReason(ver))
			c.do(revoke(id, kmip14.RevocationReasonCodeCessationOfOperation)).ok(0)
			c.do(byID(kmip14.OperationDestroy, id)).ok(0)
			c.do(byID(kmip14.OperationGet, id)).failed(0, reason(ver, kmip20.ResultReasonItemNotFound))
			// Attributes survive destruction, with the KMIP states and dates.
			ga := c.do(byID(kmip14.OperationGetAttributes, id)).ok(0)
			got := attrMap(t, ver, ga)
			if got[attrState] != ttlv.EnumValue(kmip14.StateDestroyed) {
				t.Fatalf("state %v", got[attrState])
			}
			for _, d := range []string{attrInitialDate, attrActivation, attrDeactivation, attrDestroy, attrLastChange} {
				if _, ok := got[d].(time.Time); !ok {
					t.Fatalf("%s missing: %v", d, got)
				}
			}
		})
	}
}

// attrMap flattens a Get Attributes payload (1.x or 2.x) to name → value.
func attrMap(t *testing.T, ver version, p ttlv.Value) map[string]any {
	t.Helper()
	out := map[string]any{}
	if ver.v2() {
		for _, a := range get(p, tagAttributes).(ttlv.Values) {
			if a.Tag == tagAttribute {
				vendor, _ := get(a, kmip14.TagVendorIdentification).(string)
				n, _ := get(a, tagAttributeName).(string)
				out[vendor+"-"+n] = get(a, tagAttributeValue)
				continue
			}
			out[a.Tag.CanonicalName()] = a.Value
		}
		return out
	}
	for _, a := range all(p, tagAttribute) {
		n := get(a, tagAttributeName).(string)
		if idx, ok := get(a, tagAttributeIndex).(int32); ok && idx > 0 {
			n = fmt.Sprintf("%s#%d", n, idx)
		}
		out[n] = get(a, tagAttributeValue)
	}
	return out
}

func TestCreateActivationDate(t *testing.T) {
	e := newEnv(t)
	c := e.dial("act")
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	id := uidOf(c.do(createAES(c.ver, 256, "Activation Date", past)).ok(0))
	sec, err := e.svc.GetSecret(context.Background(), who("act"), id, kms.View{Destroyed: true})
	if err != nil || sec.State != kms.Active {
		t.Fatalf("past activation date: %v %v", sec, err)
	}
	id = uidOf(c.do(createAES(c.ver, 256, "Activation Date", time.Now().Add(time.Hour))).ok(0))
	sec, _ = e.svc.GetSecret(context.Background(), who("act"), id, kms.View{Destroyed: true})
	if sec.State != kms.PreActive {
		t.Fatalf("future activation date: %s", sec.State)
	}
	// An object whose Activation Date comes is Active from then on, for
	// every reader: Get Attributes, Locate by State, the Destroy rule.
	soon := time.Now().Add(1200 * time.Millisecond)
	id = uidOf(c.do(createAES(c.ver, 256, "Activation Date", soon)).ok(0))
	stateOf := func() any {
		t.Helper()
		return attrMap(t, c.ver, c.do(byID(kmip14.OperationGetAttributes, id)).ok(0))[attrState]
	}
	if s := stateOf(); s != ttlv.EnumValue(kmip14.StatePreActive) {
		t.Fatalf("before its Activation Date: state %v", s)
	}
	time.Sleep(time.Until(soon) + 100*time.Millisecond)
	if s := stateOf(); s != ttlv.EnumValue(kmip14.StateActive) {
		t.Fatalf("after its Activation Date: state %v", s)
	}
	c.do(byID(kmip14.OperationDestroy, id)).failed(0, destroyActiveReason(c.ver))
	// Bad sizes and algorithms are the client's fault.
	c.do(createAES(c.ver, 100)).failed(0, reason(c.ver, kmip20.ResultReasonInvalidField))
	c.do(op{op: kmip14.OperationCreate, payload: []ttlv.Value{v(tagObjectType, kmip14.ObjectTypePrivateKey),
		attrs(c.ver)}}).failed(0, reason(c.ver, kmip20.ResultReasonInvalidObjectType))
}

func TestRegisterEveryObjectType(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 2}, {1, 4}, {2, 0}} {
		c := e.dial("reg")
		c.ver = ver
		ctx := context.Background()

		// Secret Data (Password) → passphrase.
		pw := []byte("correct horse battery staple")
		id := uidOf(c.do(registerSecret(ver, pw, "Name", nameVal("disk-1"))).ok(0))
		sec, pt, err := e.svc.GetPayload(ctx, who("reg"), id)
		if err != nil || sec.Type != kms.Passphrase || !bytes.Equal(pt, pw) || sec.Name != "disk-1" || sec.ContentType != "text/plain" {
			t.Fatalf("passphrase: %+v %q %v", sec, pt, err)
		}
		g := c.do(byID(kmip14.OperationGet, id)).ok(0)
		if get(g, kmip14.TagSecretData, kmip14.TagSecretDataType) != ttlv.EnumValue(kmip14.SecretDataTypePassword) ||
			!bytes.Equal(get(g, kmip14.TagSecretData, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte), pw) {
			t.Fatalf("secret data: %+v", g)
		}
		// Seeds are not passphrases.
		seed := registerSecret(ver, pw)
		seed.payload[2] = st(kmip14.TagSecretData, v(kmip14.TagSecretDataType, kmip14.SecretDataTypeSeed),
			keyBlock(kmip14.KeyFormatTypeOpaque, pw))
		c.do(seed).failed(0, reason(ver, kmip20.ResultReasonFeatureNotSupported))

		// Symmetric Key, raw.
		key := bytes.Repeat([]byte{7}, 32)
		id = uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{
			v(tagObjectType, kmip14.ObjectTypeSymmetricKey), attrs(ver),
			st(kmip14.TagSymmetricKey, keyBlock(kmip14.KeyFormatTypeRaw, key,
				v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmAES), v(kmip14.TagCryptographicLength, 256)))}}).ok(0))
		sec, pt, _ = e.svc.GetPayload(ctx, who("reg"), id)
		if sec.Type != kms.Symmetric || sec.Algorithm != "aes" || sec.BitLength != 256 || !bytes.Equal(pt, key) {
			t.Fatalf("symmetric: %+v", sec)
		}
		// A length that contradicts the key is refused.
		c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{
			v(tagObjectType, kmip14.ObjectTypeSymmetricKey), attrs(ver),
			st(kmip14.TagSymmetricKey, keyBlock(kmip14.KeyFormatTypeRaw, key, v(kmip14.TagCryptographicLength, 128)))}}).
			failed(0, reason(ver, kmip20.ResultReasonInvalidField))

		// Opaque Object.
		blob := []byte{0, 1, 2, 3, 4}
		id = uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{
			v(tagObjectType, kmip14.ObjectTypeOpaqueObject), attrs(ver),
			st(kmip14.TagOpaqueObject, v(kmip14.TagOpaqueDataType, ttlv.EnumValue(0x80000001)), v(kmip14.TagOpaqueDataValue, blob))}}).ok(0))
		g = c.do(byID(kmip14.OperationGet, id)).ok(0)
		if !bytes.Equal(get(g, kmip14.TagOpaqueObject, kmip14.TagOpaqueDataValue).([]byte), blob) ||
			get(g, kmip14.TagOpaqueObject, kmip14.TagOpaqueDataType) != ttlv.EnumValue(0x80000001) {
			t.Fatalf("opaque: %+v", g)
		}

		// Certificate, public and private keys (stored as PEM, served as DER).
		rk, _ := rsa.GenerateKey(rand.Reader, 1024)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rk.PublicKey, rk)
		id = uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{
			v(tagObjectType, kmip14.ObjectTypeCertificate), attrs(ver),
			st(kmip14.TagCertificate, v(kmip14.TagCertificateType, kmip14.CertificateTypeX_509), v(kmip14.TagCertificateValue, der))}}).ok(0))
		g = c.do(byID(kmip14.OperationGet, id)).ok(0)
		if !bytes.Equal(get(g, kmip14.TagCertificate, kmip14.TagCertificateValue).([]byte), der) {
			t.Fatal("certificate differs")
		}
		if _, pt, _ := e.svc.GetPayload(ctx, who("reg"), id); !bytes.HasPrefix(pt, []byte("-----BEGIN CERTIFICATE-----")) {
			t.Fatalf("certificate is not stored as PEM: %q", pt)
		}

		pkcs1 := x509.MarshalPKCS1PrivateKey(rk)
		id = uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{
			v(tagObjectType, kmip14.ObjectTypePrivateKey), attrs(ver),
			st(kmip14.TagPrivateKey, keyBlock(kmip14.KeyFormatTypePKCS_1, pkcs1,
				v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmRSA), v(kmip14.TagCryptographicLength, 1024)))}}).ok(0))
		g = c.do(byID(kmip14.OperationGet, id)).ok(0)
		if !bytes.Equal(get(g, kmip14.TagPrivateKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte), pkcs1) {
			t.Fatal("private key differs")
		}
		g = c.do(byID(kmip14.OperationGet, id, v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypePKCS_8))).ok(0)
		p8 := get(g, kmip14.TagPrivateKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte)
		if k, err := x509.ParsePKCS8PrivateKey(p8); err != nil || !k.(*rsa.PrivateKey).Equal(rk) {
			t.Fatalf("PKCS#8 conversion: %v", err)
		}

		ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
		id = uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{
			v(tagObjectType, kmip14.ObjectTypePublicKey), attrs(ver),
			st(kmip14.TagPublicKey, keyBlock(kmip14.KeyFormatTypeX_509, spki))}}).ok(0))
		sec, _ = e.svc.GetSecret(ctx, who("reg"), id, kms.View{Destroyed: true})
		if sec.Type != kms.Public || sec.Algorithm != "ec" || sec.BitLength != 256 {
			t.Fatalf("public key: %+v", sec)
		}
		g = c.do(byID(kmip14.OperationGet, id)).ok(0)
		if !bytes.Equal(get(g, kmip14.TagPublicKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte), spki) {
			t.Fatal("public key differs")
		}
	}
}

func TestBatchPlaceholderAndIDs(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 2}, {2, 0}} {
		c := e.dial("batch")
		c.ver = ver
		cr := createAES(ver, 256)
		cr.id = []byte{1}
		act := byID(kmip14.OperationActivate, "")
		act.id = []byte{2}
		g := byID(kmip14.OperationGet, "")
		g.id = []byte{3}
		r := c.do(cr, act, g)
		id := uidOf(r.ok(0))
		if uidOf(r.ok(1)) != id || uidOf(r.ok(2)) != id {
			t.Fatal("the ID Placeholder did not carry the created key")
		}
		for i, want := range [][]byte{{1}, {2}, {3}} {
			if got := get(r.item(i), kmip14.TagUniqueBatchItemID); !bytes.Equal(got.([]byte), want) {
				t.Fatalf("item %d echoes batch id %v", i, got)
			}
		}
		sec, _ := e.svc.GetSecret(context.Background(), who("batch"), id, kms.View{Destroyed: true})
		if sec.State != kms.Active {
			t.Fatalf("state %s", sec.State)
		}
		// Without a placeholder, an item with no identifier is missing data.
		c.do(byID(kmip14.OperationActivate, "")).failed(0, reason(ver, kmip20.ResultReasonMissingData))
	}
}

func TestBatchErrorContinuation(t *testing.T) {
	e := newEnv(t)
	c := e.dial("cont")
	bad := byID(kmip14.OperationGet, "no-such-object")
	good := createAES(c.ver, 128)
	// Default (Stop): processing stops at the first failure.
	r := decodeResp(t, c.roundTrip(requestMsg(t, c.ver, nil, bad, good)))
	if len(r.items) != 1 {
		t.Fatalf("stop: %d items", len(r.items))
	}
	r.failed(0, uint32(kmip14.ResultReasonItemNotFound))
	// Continue: every item is answered.
	cont := []ttlv.Value{v(kmip14.TagBatchErrorContinuationOption, kmip14.BatchErrorContinuationOptionContinue)}
	r = decodeResp(t, c.roundTrip(requestMsg(t, c.ver, cont, good, bad, good)))
	r.ok(0)
	r.failed(1, uint32(kmip14.ResultReasonItemNotFound))
	r.ok(2)
	// Undo of a state change is refused (see TestBatchUndo).
	undo := []ttlv.Value{v(kmip14.TagBatchErrorContinuationOption, kmip14.BatchErrorContinuationOptionUndo)}
	decodeResp(t, c.roundTrip(requestMsg(t, c.ver, undo, good))).failed(0, uint32(kmip14.ResultReasonFeatureNotSupported))
}

func TestUnsupportedOperations(t *testing.T) {
	e := newEnv(t)
	c := e.dial("unsup")
	cont := []ttlv.Value{v(kmip14.TagBatchErrorContinuationOption, kmip14.BatchErrorContinuationOptionContinue)}
	r := decodeResp(t, c.roundTrip(requestMsg(t, c.ver, cont,
		op{op: kmip14.OperationCertify, payload: []ttlv.Value{v(tagUniqueIdentifier, "x")}},
		op{op: kmip14.OperationDeriveKey},
		// Set Attribute is a 2.x operation.
		op{op: kmip14.Operation(kmip20.OperationSetAttribute), payload: []ttlv.Value{v(tagUniqueIdentifier, "x")}},
		op{op: kmip14.OperationQuery, payload: []ttlv.Value{v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryOperations)}},
	)))
	for i := range 3 {
		r.failed(i, uint32(kmip14.ResultReasonOperationNotSupported))
		if get(r.item(i), kmip14.TagOperation) == nil {
			t.Fatalf("item %d lost its Operation", i)
		}
	}
	r.ok(3)
}

func TestDiscoverVersionsAndQuery(t *testing.T) {
	e := newEnv(t)
	c := e.dial("dv")
	pv := func(maj, min int) ttlv.Value {
		return st(kmip14.TagProtocolVersion, v(kmip14.TagProtocolVersionMajor, maj), v(kmip14.TagProtocolVersionMinor, min))
	}
	versionsOf := func(p ttlv.Value) (out []version) {
		for _, x := range all(p, kmip14.TagProtocolVersion) {
			out = append(out, version{get(x, kmip14.TagProtocolVersionMajor).(int32), get(x, kmip14.TagProtocolVersionMinor).(int32)})
		}
		return out
	}
	got := versionsOf(c.do(op{op: kmip14.OperationDiscoverVersions}).ok(0))
	if !slices.Equal(got, served) {
		t.Fatalf("all versions: %v", got)
	}
	got = versionsOf(c.do(op{op: kmip14.OperationDiscoverVersions, payload: []ttlv.Value{pv(1, 2), pv(3, 0), pv(2, 0)}}).ok(0))
	if !slices.Equal(got, []version{{2, 0}, {1, 2}}) {
		t.Fatalf("intersection: %v", got)
	}
	for _, ver := range []version{{1, 4}, {2, 0}} {
		c.ver = ver
		q := c.do(op{op: kmip14.OperationQuery, payload: []ttlv.Value{
			v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryOperations),
			v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryObjects),
			v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryServerInformation)}}).ok(0)
		var ops []ttlv.EnumValue
		for _, o := range all(q, kmip14.TagOperation) {
			ops = append(ops, o.Value.(ttlv.EnumValue))
		}
		hasSet := slices.Contains(ops, ttlv.EnumValue(kmip20.OperationSetAttribute))
		if !slices.Contains(ops, ttlv.EnumValue(kmip14.OperationCreate)) || hasSet != ver.v2() {
			t.Fatalf("%v operations: %v", ver, ops)
		}
		if len(all(q, kmip14.TagObjectType)) != 6 || get(q, kmip14.TagVendorIdentification) != vendorID {
			t.Fatalf("query: %+v", q)
		}
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	c := e.dial("check")
	id := uidOf(c.do(createAES(c.ver, 256, "Cryptographic Usage Mask", 12)).ok(0))
	mask := func(m int) op { return byID(kmip14.OperationCheck, id, v(kmip14.TagCryptographicUsageMask, m)) }
	c.do(byID(kmip14.OperationCheck, id)).ok(0)
	c.do(mask(4)).failed(0, uint32(kmip14.ResultReasonIllegalOperation)) // pre-active
	c.do(byID(kmip14.OperationActivate, id)).ok(0)
	c.do(mask(4)).ok(0)
	c.do(mask(4|1)).failed(0, uint32(kmip14.ResultReasonIllegalOperation))
	c.ver = version{2, 0}
	c.do(mask(1)).failed(0, uint32(kmip20.ResultReasonIncompatibleCryptographicUsageMask))
}

func TestMaximumResponseSize(t *testing.T) {
	e := newEnv(t)
	c := e.dial("maxsize")
	id := uidOf(c.do(createAES(c.ver, 256)).ok(0))
	small := []ttlv.Value{v(kmip14.TagMaximumResponseSize, 100)}
	r := decodeResp(t, c.roundTrip(requestMsg(t, c.ver, small, byID(kmip14.OperationGet, id))))
	r.failed(0, uint32(kmip14.ResultReasonResponseTooLarge))
	if bytes.Contains(r.raw, []byte("Symmetric")) || len(r.raw) > 400 {
		t.Fatal("the oversized payload leaked into the response")
	}
	// Response Too Large is a failure like any other: Stop ends the batch.
	r = decodeResp(t, c.roundTrip(requestMsg(t, c.ver, small, byID(kmip14.OperationGet, id), byID(kmip14.OperationGet, id))))
	if len(r.items) != 1 {
		t.Fatalf("Stop after Response Too Large answered %d items", len(r.items))
	}
}

// TestCreateSecretData: Create of a Secret Data object generates a
// passphrase with the service's policy (an extension: KMIP 1.x Create makes
// symmetric keys only).
func TestCreateSecretData(t *testing.T) {
	e := newEnv(t)
	c := e.dial("gen")
	id := uidOf(c.do(op{op: kmip14.OperationCreate, payload: []ttlv.Value{
		v(tagObjectType, kmip14.ObjectTypeSecretData), attrs(c.ver, "Name", nameVal("disk-pass"))}}).ok(0))
	g := c.do(byID(kmip14.OperationGet, id)).ok(0)
	pw, _ := get(g, kmip14.TagSecretData, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte)
	sec, pt, err := e.svc.GetPayload(context.Background(), who("gen"), id)
	if err != nil || sec.Type != kms.Passphrase || !bytes.Equal(pt, pw) || len(pw) < 16 {
		t.Fatalf("generated passphrase: %+v %q %v", sec, pw, err)
	}
}
