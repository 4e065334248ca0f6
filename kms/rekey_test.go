package kms_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

func rekeyReq(offset *time.Duration) kms.RekeyRequest {
	return kms.RekeyRequest{
		Offset: offset,
		Link: func(replacement bool, peer string) (string, string) {
			if replacement {
				return "Link", "replacement:" + peer
			}
			return "Link", "replaced:" + peer
		},
		Carry: func(name string) bool { return name != "Link" },
	}
}

func TestRekeySymmetric(t *testing.T) {
	svc, audit := newAudited(t, nil)
	act := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	old, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "disk", Type: kms.Symmetric, Algorithm: "aes", BitLength: 256,
		Payload: bytes.Repeat([]byte{7}, 32), ContentType: kms.ContentTypeBinary, ActivationDate: &act,
		Attributes: map[string]string{"Object Group": "g", "Link": "old-link"}})
	if err != nil {
		t.Fatal(err)
	}
	off := 2 * time.Hour
	nu, err := svc.Rekey(ctx, creator, old.ID, rekeyReq(&off))
	if err != nil {
		t.Fatal(err)
	}
	if nu.ID == old.ID || nu.Name != "disk" || nu.BitLength != 256 || nu.Attributes["Object Group"] != "g" || nu.State != kms.PreActive {
		t.Fatalf("replacement %+v", nu)
	}
	// Fresh material from the server's generator: its own Digest, and the
	// Random Number Generator attribute's source.
	if !nu.Generated || nu.Digest == nil || (old.Digest != nil && string(nu.Digest.SHA256) == string(old.Digest.SHA256)) {
		t.Fatalf("replacement generated %v, digest %+v (old %+v)", nu.Generated, nu.Digest, old.Digest)
	}
	if nu.Attributes["Link"] != "replaced:"+old.ID || len(nu.Attributes) != 2 {
		t.Fatalf("replacement attributes %v", nu.Attributes)
	}
	if d := time.Until(*nu.ActivationDate); d < time.Hour || d > 2*time.Hour {
		t.Fatalf("activation not shifted by the offset: %v", nu.ActivationDate)
	}
	o, err := svc.GetSecret(ctx, creator, old.ID, kms.View{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "" || o.Attributes["Link#1"] != "replacement:"+nu.ID || o.State != kms.Active {
		t.Fatalf("old %+v", o)
	}
	_, p1, _ := svc.GetPayload(ctx, creator, old.ID)
	_, p2, _ := svc.GetPayload(ctx, creator, nu.ID)
	if !bytes.Equal(p1, bytes.Repeat([]byte{7}, 32)) || len(p2) != 32 || bytes.Equal(p1, p2) {
		t.Fatal("material: old kept, new fresh")
	}
	if err := svc.CheckListIndex(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if n := countActions(audit, "rekey", "ok"); n != 1 {
		t.Fatalf("%d rekey records", n)
	}
	// Without an offset the replacement keeps the dates: active at once.
	nu2, err := svc.Rekey(ctx, creator, nu.ID, rekeyReq(nil))
	if err != nil || nu2.State != kms.PreActive || !nu2.ActivationDate.Equal(*nu.ActivationDate) {
		t.Fatalf("%+v %v", nu2, err)
	}
	nu3, err := svc.Rekey(ctx, creator, old.ID, rekeyReq(nil))
	if err != nil || nu3.State != kms.Active || nu3.Name != "" {
		t.Fatalf("%+v %v", nu3, err)
	}
}

func TestRekeyRefusals(t *testing.T) {
	svc := newService(t)
	sec, err := svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Name: "k", Type: kms.Symmetric, Algorithm: "aes", BitLength: 128}})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		_, n, err := svc.ListSecrets(ctx, admin, kms.ListQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	_, err = svc.Rekey(ctx, observer, sec.ID, rekeyReq(nil))
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.Rekey(ctx, auditor, sec.ID, rekeyReq(nil))
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.Rekey(ctx, other, sec.ID, rekeyReq(nil))
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.Rekey(ctx, creator, "nope", rekeyReq(nil))
	mustKind(t, err, kms.KindNotFound)
	if _, err := svc.Revoke(ctx, creator, sec.ID, true, nil); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Rekey(ctx, creator, sec.ID, rekeyReq(nil))
	mustKind(t, err, kms.KindWrongState)
	priv, _ := pair(t, svc, "ec", 256, nil)
	_, err = svc.Rekey(ctx, creator, priv.ID, rekeyReq(nil))
	mustKind(t, err, kms.KindInvalid)
	if n := count(); n != before+2 {
		t.Fatalf("refusals left objects behind: %d → %d", before, n)
	}
}

func TestRekeyQuota(t *testing.T) {
	svc := newServiceWith(t, kms.Config{Quotas: kms.Quotas{kms.QuotaSecrets: 1}})
	sec, err := svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 128}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Rekey(ctx, creator, sec.ID, rekeyReq(nil))
	mustKind(t, err, kms.KindForbidden)
}

func TestRekeyKeyPair(t *testing.T) {
	svc := newService(t)
	priv, pub := pair(t, svc, "ec", 256, nil)
	req := rekeyReq(nil)
	req.PairLink = func(toPublic bool, peer string) (string, string) {
		if toPublic {
			return "Link", "pub:" + peer
		}
		return "Link", "priv:" + peer
	}
	np, nu, err := svc.RekeyKeyPair(ctx, creator, priv.ID, pub.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	if np.Type != kms.Private || nu.Type != kms.Public || np.Name != "k" || nu.Name != "k.pub" {
		t.Fatalf("%+v %+v", np, nu)
	}
	if np.Attributes["Link"] != "replaced:"+priv.ID || np.Attributes["Link#1"] != "pub:"+nu.ID ||
		nu.Attributes["Link"] != "replaced:"+pub.ID || nu.Attributes["Link#1"] != "priv:"+np.ID {
		t.Fatalf("links %v %v", np.Attributes, nu.Attributes)
	}
	op, _ := svc.GetSecret(ctx, creator, priv.ID, kms.View{})
	ou, _ := svc.GetSecret(ctx, creator, pub.ID, kms.View{})
	if op.Attributes["Link#1"] != "replacement:"+np.ID || ou.Attributes["Link#1"] != "replacement:"+nu.ID || op.Name != "" {
		t.Fatalf("old links %v %v", op.Attributes, ou.Attributes)
	}
	_, _, err = svc.RekeyKeyPair(ctx, creator, pub.ID, priv.ID, req)
	mustKind(t, err, kms.KindInvalid)
	// The list index follows: the old halves lost their names, two new
	// secrets were written in the same transaction.
	if err := svc.CheckListIndex(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	list, _, err := svc.ListSecrets(ctx, creator, kms.ListQuery{Name: "k"})
	for _, l := range list { // "k" and "k.pub": the new halves only
		if l.ID != np.ID && l.ID != nu.ID {
			t.Fatalf("list by name found %s (%q)", l.ID, l.Name)
		}
	}
	if err != nil || len(list) != 2 {
		t.Fatalf("list by name: %v %v", list, err)
	}
}

// What a re-key request sets goes over what the replacement carries; it
// keeps the old key's algorithm and length and never lowers Sensitive.
func TestRekeySet(t *testing.T) {
	svc := newService(t)
	old, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "disk", Type: kms.Symmetric, Algorithm: "aes", BitLength: 256,
		Payload: bytes.Repeat([]byte{7}, 32), ContentType: kms.ContentTypeBinary,
		Attributes: map[string]string{"Object Group": "g", "Object Group#1": "h", "Sensitive": "b:true"}})
	if err != nil {
		t.Fatal(err)
	}
	name, act := "disk-2", time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	req := rekeyReq(nil)
	req.Set = []kms.RekeySet{{Name: &name, Algorithm: "AES", BitLength: 256, ActivationDate: &act, Attributes: map[string]string{"Object Group": "new"}}}
	nu, err := svc.Rekey(ctx, creator, old.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	if nu.Name != "disk-2" || nu.Attributes["Object Group"] != "new" || nu.Attributes["Object Group#1"] != "" || nu.State != kms.Active ||
		nu.Attributes["Sensitive"] != "b:true" {
		t.Fatalf("replacement %+v", nu)
	}
	for _, set := range []kms.RekeySet{{BitLength: 128}, {Algorithm: "hmacsha256"}} {
		req.Set = []kms.RekeySet{set}
		_, err := svc.Rekey(ctx, creator, nu.ID, req)
		mustKind(t, err, kms.KindInvalid)
	}
	req.Set = []kms.RekeySet{{Attributes: map[string]string{"Sensitive": "b:false"}}}
	_, err = svc.Rekey(ctx, creator, nu.ID, req)
	mustKind(t, err, kms.KindForbidden)
}
