package kmip

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

func TestRekeySymmetric(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	// In the past, so both keys process data (kms enforces the date); the
	// replacement's is still past after the re-key's one-hour shift.
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	old := uidOf(c.do(createAES(c.ver, 256, "Name", nameVal("disk-key"), "Object Group", "g1", "Process Start Date", start,
		"Cryptographic Usage Mask", kmip14.CryptographicUsageMaskEncrypt|kmip14.CryptographicUsageMaskDecrypt)).ok(0))
	c.do(byID(kmip14.OperationActivate, old)).ok(0)
	data := []byte("sealed before the re-key")
	r := c.do(byID(kmip14.OperationEncrypt, old, gcmParams(), v(kmip14.TagData, data))).ok(0)
	ct, iv, tag := get(r, kmip14.TagData).([]byte), get(r, kmip14.TagIVCounterNonce).([]byte), get(r, kmip14.TagAuthenticatedEncryptionTag).([]byte)

	before := time.Now()
	// The replacement is the batch's ID Placeholder: Activate names none.
	rr := c.do(byID(kmip14.OperationReKey, old, v(kmip14.TagOffset, time.Hour)), byID(kmip14.OperationGetAttributes, ""))
	nu := uidOf(rr.ok(0))
	if nu == "" || nu == old || uidOf(rr.ok(1)) != nu {
		t.Fatalf("Re-key answered %q (old %q), placeholder %q", nu, old, uidOf(rr.ok(1)))
	}
	o, err := e.svc.GetSecret(t.Context(), who("p1"), old, kms.View{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.GetSecret(t.Context(), who("p1"), nu, kms.View{})
	if err != nil {
		t.Fatal(err)
	}
	if linked(o, kmip14.LinkTypeReplacementObjectLink) != nu || linked(n, kmip14.LinkTypeReplacedObjectLink) != old {
		t.Fatalf("links: old %v, new %v", o.Attributes, n.Attributes)
	}
	if o.Name != "" || n.Name != "disk-key" || n.Attributes["Object Group"] != o.Attributes["Object Group"] || n.State != kms.PreActive || o.State != kms.Active {
		t.Fatalf("old %+v new %+v", o, n)
	}
	if a := n.ActivationDate; a == nil || a.Before(before.Add(time.Hour-time.Second)) || a.After(time.Now().Add(time.Hour)) {
		t.Fatalf("Activation Date %v is not the re-key time + Offset", a)
	}
	// The Process Start Date moved as far as the activation did.
	ps, _ := decodeValue(n.Attributes["Process Start Date"])
	if got, perr := ps.datetime(); perr != nil || got.Sub(start) < time.Hour-2*time.Second || got.Sub(start) > time.Hour+2*time.Second {
		t.Fatalf("Process Start Date %v (was %v): not shifted by the activation's move", got, start)
	}
	// Locate by name finds the replacement only.
	loc := c.do(op{op: kmip14.OperationLocate, payload: []ttlv.Value{attr1("Name", nameVal("disk-key"))}}).ok(0)
	if ids := all(loc, tagUniqueIdentifier); len(ids) != 1 || ids[0].Value != nu {
		t.Fatalf("Locate by name: %v", ids)
	}
	// The old key still decrypts what it sealed.
	back := c.do(byID(kmip14.OperationDecrypt, old, gcmParams(), v(kmip14.TagData, ct), v(kmip14.TagIVCounterNonce, iv),
		v(kmip14.TagAuthenticatedEncryptionTag, tag))).ok(0)
	if !bytes.Equal(get(back, kmip14.TagData).([]byte), data) {
		t.Fatal("the old key no longer decrypts")
	}
	// Fresh material: the new key does not decrypt the old ciphertext once active.
	c.do(byID(kmip14.OperationActivate, nu)).ok(0)
	c.do(byID(kmip14.OperationDecrypt, nu, gcmParams(), v(kmip14.TagData, ct), v(kmip14.TagIVCounterNonce, iv),
		v(kmip14.TagAuthenticatedEncryptionTag, tag))).failed(0, uint32(kmip14.ResultReasonCryptographicFailure))
}

func TestRekeyRefusalsLeaveNothing(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	id := uidOf(c.do(createAES(c.ver, 128)).ok(0))
	privID, _ := createPair(c, kmip14.CryptographicAlgorithmECDSA, 256, kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify)
	count := func() int {
		_, n, err := e.svc.ListSecrets(t.Context(), who("p1"), kms.ListQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n0 := count()
	c.do(byID(kmip14.OperationReKey, "no-such-key")).failed(0, uint32(kmip14.ResultReasonItemNotFound))
	e.dial("p1", "observer").do(byID(kmip14.OperationReKey, id)).failed(0, uint32(kmip14.ResultReasonPermissionDenied))
	e.dial("p2").do(byID(kmip14.OperationReKey, id)).failed(0, uint32(kmip14.ResultReasonPermissionDenied))
	c.do(byID(kmip14.OperationReKey, privID)).failed(0, uint32(kmip14.ResultReasonInvalidField))
	c.do(byID(kmip14.OperationReKey, id, attrs(c.ver, "Object Group", "x"))).failed(0, uint32(kmip14.ResultReasonFeatureNotSupported))
	c.do(byID(kmip14.OperationReKey, id, v(kmip14.TagOffset, "soon"))).failed(0, uint32(kmip14.ResultReasonInvalidField))
	c.do(revoke(id, kmip14.RevocationReasonCodeKeyCompromise)).ok(0)
	c.ver = version{2, 0}
	c.do(byID(kmip14.OperationReKey, id)).failed(0, uint32(kmip20.ResultReasonWrongKeyLifecycleState))
	c.do(byID(kmip14.OperationDestroy, id)).ok(0)
	c.do(byID(kmip14.OperationReKey, id)).failed(0, uint32(kmip20.ResultReasonWrongKeyLifecycleState))
	if n := count(); n != n0-1 { // the destroyed key leaves the list

		t.Fatalf("refused re-keys left objects: %d → %d", n0, n)
	}
}

func TestRekeyKeyPair(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	privID, pubID := createPair(c, kmip14.CryptographicAlgorithmRSA, 2048, kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify)
	// Re-key Key Pair is a 1.1 operation.
	c.ver = version{1, 0}
	c.do(op{op: kmip14.OperationReKeyKeyPair, payload: []ttlv.Value{v(kmip14.TagPrivateKeyUniqueIdentifier, privID)}}).
		failed(0, uint32(kmip14.ResultReasonOperationNotSupported))
	c.ver = version{1, 4}
	r := c.do(op{op: kmip14.OperationReKeyKeyPair, payload: []ttlv.Value{v(kmip14.TagPrivateKeyUniqueIdentifier, privID)}}).ok(0)
	np, _ := get(r, kmip14.TagPrivateKeyUniqueIdentifier).(string)
	nu, _ := get(r, kmip14.TagPublicKeyUniqueIdentifier).(string)
	if np == "" || nu == "" || np == privID || nu == pubID {
		t.Fatalf("Re-key Key Pair answered %v", r)
	}
	sec := func(id string) *kms.Secret {
		s, err := e.svc.GetSecret(t.Context(), who("p1"), id, kms.View{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	op, ou, pn, un := sec(privID), sec(pubID), sec(np), sec(nu)
	if linked(op, kmip14.LinkTypeReplacementObjectLink) != np || linked(ou, kmip14.LinkTypeReplacementObjectLink) != nu ||
		linked(pn, kmip14.LinkTypeReplacedObjectLink) != privID || linked(un, kmip14.LinkTypeReplacedObjectLink) != pubID {
		t.Fatal("replacement links")
	}
	if linked(pn, kmip14.LinkTypePublicKeyLink) != nu || linked(un, kmip14.LinkTypePrivateKeyLink) != np {
		t.Fatal("the new halves are not linked to each other")
	}
	if pn.Name != "k" || un.Name != "k.pub" || op.Name != "" || ou.Name != "" || pn.Attributes[kms.AttrUsageMask] != op.Attributes[kms.AttrUsageMask] {
		t.Fatalf("names and attributes: %+v %+v", pn, un)
	}
	// A public key is not the private key of a pair.
	c.do(op2(kmip14.OperationReKeyKeyPair, pubID)).failed(0, uint32(kmip14.ResultReasonInvalidField))
}

func op2(o kmip14.Operation, privID string) op {
	return op{op: o, payload: []ttlv.Value{v(kmip14.TagPrivateKeyUniqueIdentifier, privID)}}
}

// TestQueryListsRekey: Query names Re-key from 1.0 and Re-key Key Pair
// from 1.1, the versions that define them.
func TestQueryListsRekey(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	for _, ver := range []version{{1, 0}, {1, 1}, {2, 1}} {
		c.ver = ver
		q := c.do(op{op: kmip14.OperationQuery, payload: []ttlv.Value{v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryOperations)}}).ok(0)
		var ops []ttlv.EnumValue
		for _, o := range all(q, kmip14.TagOperation) {
			ops = append(ops, o.Value.(ttlv.EnumValue))
		}
		if !slices.Contains(ops, ttlv.EnumValue(kmip14.OperationReKey)) ||
			slices.Contains(ops, ttlv.EnumValue(kmip14.OperationReKeyKeyPair)) != (ver != version{1, 0}) {
			t.Fatalf("%v: Query lists %v", ver, ops)
		}
	}
}
