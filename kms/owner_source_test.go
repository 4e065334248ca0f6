package kms_test

import (
	"testing"

	"github.com/keywarden/keywarden/kms"
)

// The owner of a private secret is its creator of the same identity
// source: "ann" of another token issuer or CA in the same project is only
// a fellow member. Secrets stored before sources were recorded keep
// matching by name.
func TestOwnerNamespacedBySource(t *testing.T) {
	svc := newService(t)
	ann := kms.Identity{Project: "p1", User: "ann", Roles: []string{kms.RoleCreator}, Source: "jwt:idp-a"}
	sec, err := svc.CreateSecret(ctx, ann, kms.CreateRequest{Name: "s", Payload: []byte("k"), ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if sec.CreatorSource != "jwt:idp-a" {
		t.Fatalf("creator source %q", sec.CreatorSource)
	}
	no := false
	if _, err := svc.SetACL(ctx, ann, sec.ID, kms.ACLChange{ProjectAccess: &no, Replace: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.GetPayload(ctx, ann, sec.ID); err != nil {
		t.Fatalf("the owner: %v", err)
	}
	for _, src := range []string{"jwt:idp-b", "x509:0123", ""} {
		other := ann
		other.Source = src
		if _, _, err := svc.GetPayload(ctx, other, sec.ID); kms.KindOf(err) != kms.KindForbidden {
			t.Errorf("ann of %q read ann of jwt:idp-a's private secret: %v", src, err)
		}
		if err := svc.DeleteSecret(ctx, other, sec.ID, false); kms.KindOf(err) != kms.KindForbidden {
			t.Errorf("ann of %q deleted ann of jwt:idp-a's private secret: %v", src, err)
		}
	}
}
