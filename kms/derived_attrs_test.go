package kms_test

import (
	"context"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// TestDerivedKMIPState: Always Sensitive and Never Extractable are what
// the key was made with; Fresh holds until the first Get of the material
// (and only that Get writes); Revoke keeps its reason and occurrence date.
func TestDerivedKMIPState(t *testing.T) {
	svc, ctx := newService(t), context.Background()
	mk := func(attrs map[string]string) *kms.Secret {
		sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 128,
			Payload: make([]byte, 16), ContentType: "application/octet-stream", Attributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		return sec
	}
	plain := mk(nil)
	if !plain.Fresh || plain.AlwaysSensitive || plain.NeverExtractable {
		t.Fatalf("a plain key: fresh %v, always sensitive %v, never extractable %v", plain.Fresh, plain.AlwaysSensitive, plain.NeverExtractable)
	}
	if s := mk(map[string]string{kms.AttrSensitive: "b:true", kms.AttrExtractable: "b:false"}); !s.AlwaysSensitive || !s.NeverExtractable {
		t.Fatal("a key made sensitive and not extractable")
	}
	before, _ := svc.GetSecret(ctx, creator, plain.ID, kms.View{})
	for i := range 2 {
		got, pt, err := svc.GetPayload(ctx, creator, plain.ID)
		if err != nil {
			t.Fatal(err)
		}
		crypto.Zero(pt)
		if got.Fresh {
			t.Fatalf("Get %d answered a fresh object", i)
		}
		after, _ := svc.GetSecret(ctx, creator, plain.ID, kms.View{})
		if after.Fresh {
			t.Fatal("Fresh not cleared by the first Get")
		}
		if i == 1 && !after.Updated.Equal(before.Updated) {
			t.Fatal("a second Get wrote")
		}
		before = after
	}
	when := time.Unix(6, 0).UTC()
	rev, err := svc.RevokeFor(ctx, creator, plain.ID, kms.Revocation{Code: kms.RevokedKeyCompromise, Message: "lost", Occurred: &when})
	if err != nil {
		t.Fatal(err)
	}
	if rev.State != kms.Compromised || rev.Revocation == nil || rev.Revocation.Code != kms.RevokedKeyCompromise ||
		rev.Revocation.Message != "lost" || !rev.Revocation.Occurred.Equal(when) {
		t.Fatalf("revoked: %v %+v", rev.State, rev.Revocation)
	}
	// The Compromise Date is the revocation's own time, not the date the
	// caller believes the compromise happened.
	if rev.CompromiseDate == nil || rev.CompromiseDate.Before(before.Updated) {
		t.Fatalf("compromise date %v, occurrence %v", rev.CompromiseDate, when)
	}
	// Without an occurrence date, it is the object's Initial Date.
	other := mk(nil)
	rev2, err := svc.RevokeFor(ctx, creator, other.ID, kms.Revocation{Code: kms.RevokedKeyCompromise})
	if err != nil {
		t.Fatal(err)
	}
	if rev2.Revocation.Occurred == nil || !rev2.Revocation.Occurred.Equal(other.Created) || rev2.CompromiseDate == nil {
		t.Fatalf("no occurrence date given: %+v, compromise date %v", rev2.Revocation, rev2.CompromiseDate)
	}
	if _, err := svc.RevokeFor(ctx, creator, plain.ID, kms.Revocation{Code: 9}); kms.KindOf(err) != kms.KindInvalid {
		t.Fatalf("reason code 9: %v", err)
	}
}
