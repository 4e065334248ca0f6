package kms_test

import (
	"strings"
	"testing"

	"github.com/keywarden/keywarden/kms"
)

// Every state change is audited, or it does not happen: with the audit
// device down, changes are refused as unavailable and leave nothing
// behind; reads go on; once it is back, changes go through again.
func TestAuditDownRefusesChanges(t *testing.T) {
	svc, audit := newAudited(t, nil)
	sec := storeKey(t, svc, creator, kms.CreateRequest{Name: "kept"})
	audit.setDown(true)

	_, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "new", Payload: []byte("x"), ContentType: "text/plain"})
	mustKind(t, err, kms.KindUnavailable)
	users := []string{"eve"}
	_, err = svc.SetACL(ctx, creator, sec.ID, kms.ACLChange{Users: &users})
	mustKind(t, err, kms.KindUnavailable)
	mustKind(t, svc.SetMetadatum(ctx, creator, sec.ID, "os_encrypt_key_deletion_policy", "on_image_deletion", true), kms.KindUnavailable)
	_, err = svc.AddConsumer(ctx, creator, sec.ID, volume1)
	mustKind(t, err, kms.KindUnavailable)
	mustKind(t, svc.DeleteSecret(ctx, creator, sec.ID, false), kms.KindUnavailable)

	list, _, err := svc.ListSecrets(ctx, creator, kms.ListQuery{})
	if err != nil || len(list) != 1 || list[0].ID != sec.ID {
		t.Fatalf("after refused changes: %d secrets %v", len(list), err)
	}
	got, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{})
	if err != nil || got.ACL != nil || len(got.Metadata) != 0 || len(got.Consumers) != 0 {
		t.Fatalf("a refused change was made: %+v %v", got, err)
	}

	audit.setDown(false)
	if _, err := svc.SetACL(ctx, creator, sec.ID, kms.ACLChange{Users: &users}); err != nil {
		t.Fatal(err)
	}
	// The durable record names the caller and the before/after.
	var rec *kms.AuditRecord
	for _, r := range audit.all() {
		if r.Action == "acl_set" && r.Outcome == "ok" {
			rec = &r
		}
	}
	if rec == nil || rec.SecretID != sec.ID || rec.User != creator.User || rec.Roles != "creator" ||
		!strings.Contains(rec.Detail, "users=eve") {
		t.Fatalf("acl_set record %+v", rec)
	}
	if n := countActions(audit, "acl_set", "ok"); n != 1 {
		t.Fatalf("%d acl_set:ok records, want exactly 1", n)
	}
}

func countActions(a *memAudit, action, outcome string) int {
	n := 0
	for _, r := range a.all() {
		if r.Action == action && r.Outcome == outcome {
			n++
		}
	}
	return n
}
