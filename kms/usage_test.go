package kms_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// The rules the KMIP adapter used to decide on a snapshot are kms's: a
// multi-valued attribute cannot be Set, and an object is usable only when
// active and within every usage mask it has.
func TestAttributeAndUsageRules(t *testing.T) {
	svc := newService(t)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, State: kms.PreActive,
		Payload: make([]byte, 32), ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.ChangeAttribute(ctx, creator, sec.ID, kms.AttrOp{Kind: kms.AttrSet, Name: "Object Group", Multi: true, Value: "g"})
	mustKind(t, err, kms.KindMultiValued)
	mask := func(n int) kms.AttrOp {
		return kms.AttrOp{Kind: kms.AttrSet, Name: kms.AttrUsageMask, Value: "i:" + strconv.Itoa(n)} // the KMIP adapter's Integer encoding
	}
	if _, err := svc.ChangeAttribute(ctx, creator, sec.ID, mask(12)); err != nil {
		t.Fatal(err)
	}
	get := func() *kms.Secret {
		got, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	mustKind(t, get().Usable(kms.UseEncrypt), kms.KindWrongState) // pre-active
	if _, err := svc.Activate(ctx, creator, sec.ID); err != nil {
		t.Fatal(err)
	}
	if err := get().Usable(kms.UseEncrypt | kms.UseDecrypt); err != nil {
		t.Fatalf("within the mask: %v", err)
	}
	mustKind(t, get().Usable(kms.UseEncrypt|kms.UseSign), kms.KindUsage)
	// The Activation Date of an active object is read-only.
	_, err = svc.SetActivationDate(ctx, creator, sec.ID, get().Created)
	mustKind(t, err, kms.KindReadOnly)
}

// A key is used only within its protection period (KMIP 1.4 §3.25-3.26):
// it stops applying protection after its Protect Stop Date and processes
// protected data only from its Process Start Date.
func TestProtectionPeriod(t *testing.T) {
	svc := newService(t)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 128,
		Payload: make([]byte, 16), ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	set := func(name string, at time.Time) {
		t.Helper()
		op := kms.AttrOp{Kind: kms.AttrSet, Name: name, Value: "d:" + strconv.FormatInt(at.Unix(), 10)}
		if _, err := svc.ChangeAttribute(ctx, creator, sec.ID, op); err != nil {
			t.Fatal(err)
		}
	}
	p := kms.CryptoParams{Mode: "ecb"}
	block := make([]byte, 16)
	ct, err := svc.Encrypt(ctx, creator, sec.ID, p, block)
	if err != nil {
		t.Fatalf("no dates: %v", err)
	}
	set(kms.AttrProcessStartDate, time.Now().Add(time.Hour))
	if _, err := svc.Encrypt(ctx, creator, sec.ID, p, block); err != nil {
		t.Fatalf("before the Process Start Date, Encrypt: %v", err)
	}
	_, err = svc.Decrypt(ctx, creator, sec.ID, p, ct.Data)
	mustKind(t, err, kms.KindForbidden)
	set(kms.AttrProcessStartDate, time.Now().Add(-time.Hour))
	set(kms.AttrProtectStopDate, time.Now().Add(-time.Hour))
	if _, err := svc.Decrypt(ctx, creator, sec.ID, p, ct.Data); err != nil {
		t.Fatalf("after the Protect Stop Date, Decrypt: %v", err)
	}
	_, err = svc.Encrypt(ctx, creator, sec.ID, p, block)
	mustKind(t, err, kms.KindForbidden)
}
