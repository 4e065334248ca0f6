package kmip

import (
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// Attributes in a re-key request (KMIP 1.4 §4.4, §4.5; 2.x Attributes)
// are set on the replacement over the old key's: a Name, an Activation
// Date (over the Offset's), a Usage Mask, an Object Group replacing the
// carried one. The same algorithm and length are accepted, others refused;
// server-set attributes are refused as at Create, and so is lowering
// Sensitive. A key pair takes Common attributes on both halves and its
// Private / Public ones on each.
func TestRekeyAttributes(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 4}, {2, 0}} {
		c := e.dial("p1")
		c.ver = ver
		get1 := func(id string) *kms.Secret {
			s, err := e.svc.GetSecret(t.Context(), who("p1"), id, kms.View{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		old := uidOf(c.do(createAES(c.ver, 128, "Name", nameVal("before"), "Object Group", "g1", "Sensitive", true,
			"Cryptographic Usage Mask", kmip14.CryptographicUsageMaskEncrypt|kmip14.CryptographicUsageMaskDecrypt)).ok(0))
		act := time.Now().Add(-time.Minute).Truncate(time.Second)
		nu := uidOf(c.do(byID(kmip14.OperationReKey, old, v(kmip14.TagOffset, 24*time.Hour), attrs(c.ver,
			"Name", nameVal("after"), "Object Group", "g2", "Activation Date", act, "Cryptographic Length", 128,
			"Cryptographic Algorithm", kmip14.CryptographicAlgorithmAES,
			"Cryptographic Usage Mask", kmip14.CryptographicUsageMaskEncrypt))).ok(0))
		n, o := get1(nu), get1(old)
		if n.Name != "after" || o.Name != "" || n.Attributes["Object Group"] != "t:g2" || n.Attributes["Object Group#1"] != "" {
			t.Fatalf("%v: replacement %q %v, old %q", ver, n.Name, n.Attributes, o.Name)
		}
		if n.ActivationDate == nil || !n.ActivationDate.Equal(act) || n.State != kms.Active {
			t.Fatalf("%v: Activation Date %v state %v, want %v and Active", ver, n.ActivationDate, n.State, act)
		}
		// The new mask holds: the replacement encrypts and does not decrypt.
		r := c.do(byID(kmip14.OperationEncrypt, nu, gcmParams(), v(kmip14.TagData, []byte("x")))).ok(0)
		c.do(byID(kmip14.OperationDecrypt, nu, gcmParams(), v(kmip14.TagData, get(r, kmip14.TagData)),
			v(kmip14.TagIVCounterNonce, get(r, kmip14.TagIVCounterNonce)), v(kmip14.TagAuthenticatedEncryptionTag, get(r, kmip14.TagAuthenticatedEncryptionTag)))).
			failed(0, reason(c.ver, kmip20.ResultReasonIncompatibleCryptographicUsageMask))

		// Refusals, none of which leaves an object.
		_, before, _ := e.svc.ListSecrets(t.Context(), who("p1"), kms.ListQuery{})
		c.do(byID(kmip14.OperationReKey, nu, attrs(c.ver, "Cryptographic Length", 256))).failed(0, uint32(kmip14.ResultReasonInvalidField))
		c.do(byID(kmip14.OperationReKey, nu, attrs(c.ver, "Cryptographic Algorithm", kmip14.CryptographicAlgorithmHMAC_SHA256))).
			failed(0, uint32(kmip14.ResultReasonInvalidField))
		c.do(byID(kmip14.OperationReKey, nu, attrs(c.ver, "Unique Identifier", "mine"))).failed(0, reason(c.ver, kmip20.ResultReasonReadOnlyAttribute))
		c.do(byID(kmip14.OperationReKey, nu, attrs(c.ver, "Sensitive", false))).failed(0, uint32(kmip14.ResultReasonPermissionDenied))
		c.do(byID(kmip14.OperationReKey, nu, attrs(c.ver, "x-keywarden-consumer", "nova/server/1"))).failed(0, uint32(kmip14.ResultReasonInvalidField))
		if _, after, _ := e.svc.ListSecrets(t.Context(), who("p1"), kms.ListQuery{}); after != before {
			t.Fatalf("%v: refused re-keys left objects: %d → %d", ver, before, after)
		}

		priv, pub := createPair(c, kmip14.CryptographicAlgorithmECDSA, 256, kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify)
		common, private := tagCommonAttrs(ver)
		rp := c.do(op{op: kmip14.OperationReKeyKeyPair, payload: []ttlv.Value{v(kmip14.TagPrivateKeyUniqueIdentifier, priv),
			retag(attrs(c.ver, "Object Group", "pair-g"), common),
			retag(attrs(c.ver, "Name", nameVal("new-private")), private)}}).ok(0)
		np, _ := get(rp, kmip14.TagPrivateKeyUniqueIdentifier).(string)
		nb, _ := get(rp, kmip14.TagPublicKeyUniqueIdentifier).(string)
		p, b := get1(np), get1(nb)
		if p.Name != "new-private" || b.Name == "new-private" || p.Attributes["Object Group"] != "t:pair-g" || b.Attributes["Object Group"] != "t:pair-g" {
			t.Fatalf("%v: pair replacement: private %q %v, public %q %v", ver, p.Name, p.Attributes, b.Name, b.Attributes)
		}
		_ = pub
		c.do(byID(kmip14.OperationReKey, nu, retag(attrs(c.ver, "Object Group", "g"), private))).failed(0, uint32(kmip14.ResultReasonInvalidField))
	}
}

// tagCommonAttrs are the pair's attribute container tags in ver.
func tagCommonAttrs(ver version) (common, private ttlv.Tag) {
	if ver.v2() {
		return kmip20.TagCommonAttributes, kmip20.TagPrivateKeyAttributes
	}
	return kmip14.TagCommonTemplateAttribute, kmip14.TagPrivateKeyTemplateAttribute
}

func retag(x ttlv.Value, tag ttlv.Tag) ttlv.Value { x.Tag = tag; return x }
