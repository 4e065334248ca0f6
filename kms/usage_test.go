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

// A key past its Protect Stop Date no longer encrypts (it still decrypts);
// before its Process Start Date it does not decrypt (it encrypts); a
// stream opens under the same rule.
func TestUsePeriods(t *testing.T) {
	svc := newService(t)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", Mode: "ctr",
		Payload: make([]byte, 32), ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	set := func(name string, at time.Time) {
		t.Helper()
		if _, err := svc.ChangeAttribute(ctx, creator, sec.ID, kms.AttrOp{Kind: kms.AttrSet, Name: name,
			Value: "d:" + strconv.FormatInt(at.Unix(), 10)}); err != nil {
			t.Fatal(err)
		}
	}
	p := kms.CryptoParams{IV: make([]byte, 16)}
	if _, err := svc.Encrypt(ctx, creator, sec.ID, p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	set(kms.AttrProtectStop, time.Now().Add(-time.Hour))
	_, err = svc.Encrypt(ctx, creator, sec.ID, p, []byte("x"))
	mustKind(t, err, kms.KindForbidden)
	_, _, err = svc.OpenCipherStream(ctx, creator, sec.ID, p, true)
	mustKind(t, err, kms.KindForbidden)
	if _, err := svc.Decrypt(ctx, creator, sec.ID, p, []byte("x")); err != nil {
		t.Fatalf("decrypting past the Protect Stop Date: %v", err)
	}
	set(kms.AttrProtectStop, time.Now().Add(time.Hour))
	set(kms.AttrProcessStart, time.Now().Add(time.Hour))
	_, err = svc.Decrypt(ctx, creator, sec.ID, p, []byte("x"))
	mustKind(t, err, kms.KindForbidden)
	if _, err := svc.Encrypt(ctx, creator, sec.ID, p, []byte("x")); err != nil {
		t.Fatalf("encrypting before the Process Start Date: %v", err)
	}
}
