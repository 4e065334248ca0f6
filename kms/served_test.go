package kms_test

import (
	"strings"
	"testing"

	"github.com/keywarden/keywarden/kms"
)

// TestServedAtCreation: ServedAtCreation makes the object not Fresh in the
// create's own write and audit line, only when the caller could read the
// material; RestoreFresh puts Fresh back, audited, and is refused to a
// caller who may not read it.
func TestServedAtCreation(t *testing.T) {
	a := &memAudit{}
	svc := newServiceWith(t, kms.Config{Audit: a})
	req := kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 128,
		Payload: make([]byte, 16), ContentType: kms.ContentTypeBinary, ServedAtCreation: true}
	sec, err := svc.CreateSecret(ctx, creator, req)
	if err != nil {
		t.Fatal(err)
	}
	if sec.Fresh {
		t.Fatal("created served, yet fresh")
	}
	var detail string
	for _, r := range a.all() {
		if r.Action == "create" && r.SecretID == sec.ID {
			detail = r.Detail
		}
	}
	if !strings.Contains(detail, "served at creation") {
		t.Fatalf("create detail %q does not say served at creation", detail)
	}
	// A key the caller cannot read (sensitive) is created fresh anyway.
	req.Attributes = map[string]string{kms.AttrSensitive: "b:true"}
	if s, err := svc.CreateSecret(ctx, creator, req); err != nil || !s.Fresh {
		t.Fatalf("a sensitive key created served: fresh %v, %v; want fresh", s != nil && s.Fresh, err)
	}
	// Who may not read it may not restore it.
	mustKind(t, svc.RestoreFresh(ctx, auditor, sec.ID), kms.KindForbidden)
	mustKind(t, svc.RestoreFresh(ctx, other, sec.ID), kms.KindForbidden)
	if err := svc.RestoreFresh(ctx, creator, sec.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.GetSecret(ctx, creator, sec.ID, kms.View{}); !got.Fresh {
		t.Fatal("not fresh after RestoreFresh")
	}
	if err := svc.RestoreFresh(ctx, creator, sec.ID); err != nil { // already fresh: no write
		t.Fatal(err)
	}
	if n := countActions(a, "fresh_restore", "ok"); n != 1 {
		t.Fatalf("%d fresh_restore records; want 1", n)
	}
}
