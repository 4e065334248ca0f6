package kms_test

import (
	"context"
	"testing"

	"github.com/keywarden/keywarden/kms"
)

// TestUsageLimits: a key with Usage Limits counts each Encrypt, Decrypt, MAC
// and MAC Verify
// (bytes or requests) and refuses the use that would pass its total; a
// stream is refused; a key without limits is not counted.
func TestUsageLimits(t *testing.T) {
	svc, who := newService(t), creator
	ctx := context.Background()
	mk := func(u *kms.UsageLimits) string {
		sec, err := svc.CreateSecret(ctx, who, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 128, Mode: "gcm",
			Payload: make([]byte, 16), ContentType: "application/octet-stream", UsageLimits: u})
		if err != nil {
			t.Fatal(err)
		}
		return sec.ID
	}
	p := kms.CryptoParams{Mode: "gcm"}
	bytes16 := mk(&kms.UsageLimits{Total: 16, Unit: kms.UsageBytes})
	if _, err := svc.Encrypt(ctx, who, bytes16, p, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Encrypt(ctx, who, bytes16, p, make([]byte, 7)); kms.KindOf(err) != kms.KindForbidden {
		t.Fatalf("17 of 16 bytes: %v", err)
	}
	if _, err := svc.Encrypt(ctx, who, bytes16, p, make([]byte, 6)); err != nil {
		t.Fatalf("16 of 16 bytes: %v", err)
	}
	sec, _ := svc.GetSecret(ctx, who, bytes16, kms.View{})
	if sec.UsageLimits == nil || sec.UsageLimits.Used != 16 || sec.UsageLimits.Remaining() != 0 {
		t.Fatalf("counted %+v", sec.UsageLimits)
	}
	if _, _, err := svc.OpenCipherStream(ctx, who, bytes16, p, true); kms.KindOf(err) != kms.KindInvalid {
		t.Fatalf("a stream with Usage Limits: %v", err)
	}
	objects := mk(&kms.UsageLimits{Total: 1, Unit: kms.UsageObjects})
	res, err := svc.Encrypt(ctx, who, objects, p, make([]byte, 100))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Decrypt(ctx, who, objects, kms.CryptoParams{Mode: "gcm", IV: res.IV, Tag: res.Tag}, res.Data); kms.KindOf(err) != kms.KindForbidden {
		t.Fatalf("a second use of a 1-object key: %v", err)
	}
	// A MAC key counts its MAC and MAC Verify as well.
	hk, err := svc.CreateSecret(ctx, who, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "hmacsha256", BitLength: 256,
		Payload: make([]byte, 32), ContentType: "application/octet-stream", UsageLimits: &kms.UsageLimits{Total: 2, Unit: kms.UsageObjects}})
	if err != nil {
		t.Fatal(err)
	}
	mac, err := svc.MAC(ctx, who, hk.ID, kms.CryptoParams{}, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := svc.VerifyMAC(ctx, who, hk.ID, kms.CryptoParams{}, []byte("m"), mac); !ok || err != nil {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if _, err := svc.MAC(ctx, who, hk.ID, kms.CryptoParams{}, []byte("m")); kms.KindOf(err) != kms.KindForbidden {
		t.Fatalf("a third use of a 2-object MAC key: %v", err)
	}
	free := mk(nil)
	for range 3 {
		if _, err := svc.Encrypt(ctx, who, free, p, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if sec, _ := svc.GetSecret(ctx, who, free, kms.View{}); sec.UsageLimits != nil {
		t.Fatal("a key without limits got some")
	}
	for _, bad := range []*kms.UsageLimits{{Total: 0, Unit: kms.UsageBytes}, {Total: 5, Unit: "block"}, {Total: 5, Used: 1, Unit: kms.UsageBytes}} {
		if _, err := svc.CreateSecret(ctx, who, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 128,
			Payload: make([]byte, 16), ContentType: "application/octet-stream", UsageLimits: bad}); kms.KindOf(err) != kms.KindInvalid {
			t.Errorf("Usage Limits %+v: %v", bad, err)
		}
	}
}
