package kms_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"testing"

	"github.com/keywarden/keywarden/kms"
)

// TestDigestAndGenerated: kms hashes key material when it is sealed (the
// DER of a PEM payload), never a passphrase, and marks what it generated;
// a clone keeps both, since its material is the same.
func TestDigestAndGenerated(t *testing.T) {
	svc := newService(t)
	key, err := svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Symmetric}})
	if err != nil {
		t.Fatal(err)
	}
	_, pt, err := svc.GetPayload(ctx, creator, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pt)
	if !key.Generated || key.Digest == nil || !bytes.Equal(key.Digest.SHA256, sum[:]) || key.Digest.PEMType != "" {
		t.Fatalf("generated key: generated %v digest %+v", key.Generated, key.Digest)
	}
	clone, err := svc.CloneSecret(ctx, creator, key.ID, kms.CloneRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !clone.Generated || clone.Digest == nil || !bytes.Equal(clone.Digest.SHA256, sum[:]) {
		t.Fatalf("clone: generated %v digest %+v", clone.Generated, clone.Digest)
	}

	priv, _ := pair(t, svc, "ec", 256, nil)
	_, pt, err = svc.GetPayload(ctx, creator, priv.ID)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pt)
	sum = sha256.Sum256(blk.Bytes)
	if !priv.Generated || priv.Digest == nil || !bytes.Equal(priv.Digest.SHA256, sum[:]) || priv.Digest.PEMType != blk.Type {
		t.Fatalf("private key: generated %v digest %+v", priv.Generated, priv.Digest)
	}

	reg, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 128,
		Payload: bytes.Repeat([]byte{1}, 16), ContentType: kms.ContentTypeBinary})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Generated || reg.Digest == nil {
		t.Fatalf("registered key: generated %v digest %+v", reg.Generated, reg.Digest)
	}
	pw, err := svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Passphrase}})
	if err != nil {
		t.Fatal(err)
	}
	if !pw.Generated || pw.Digest != nil {
		t.Fatalf("passphrase: generated %v digest %+v", pw.Generated, pw.Digest)
	}
}
