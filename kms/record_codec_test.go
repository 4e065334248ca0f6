package kms

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
)

func sampleRecord() *record {
	now := time.Date(2026, 12, 6, 11, 58, 49, 438030123, time.UTC)
	exp := now.Add(time.Hour)
	return &record{
		Secret: &Secret{ID: "01a24b38-965e-708f-a495-15f49fd5084c", Project: "p-0123456789abcdef0123456789abcdef",
			Creator: "u-0123456789abcdef0123456789abcdef", Name: "volume-0123456789abcdef0123456789abcdef",
			Type: Symmetric, Algorithm: "aes", BitLength: 256, Mode: "xts", ContentType: "application/octet-stream",
			State: Active, Created: now, Updated: now, ActivationDate: &now, Expiration: &exp,
			Metadata: map[string]string{"k": "v"}, Attributes: map[string]string{"x-a": "i:12"},
			ACL:            &ACL{Users: []string{"u1"}, ProjectAccess: true, Created: now, Updated: now},
			Consumers:      []Consumer{{Service: "nova", ResourceType: "instance", ResourceID: "i-1", Created: now}},
			DeletionPolicy: "retain", HasPayload: true, Digest: &MaterialDigest{SHA256: make([]byte, 32)},
			Encryption: &DiskEncryption{Format: "luks2", Cipher: "aes-xts-plain64", KeySize: 512}},
		Sealed: &crypto.Envelope{Version: 1, WrappedDEK: make([]byte, 60), Ciphertext: make([]byte, 92)},
	}
}

// Every field survives the stored form, times to the nanosecond.
func TestRecordRoundTrip(t *testing.T) {
	want := sampleRecord()
	b := marshalRecord(want)
	if isJSONRecord(b) {
		t.Fatal("record encoded as JSON")
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	wj, _ := json.Marshal(want)
	gj, _ := json.Marshal(got)
	if string(wj) != string(gj) {
		t.Fatalf("round trip changed the record:\n got %s\nwant %s", gj, wj)
	}
	if n, err := recordConsumers(append(b, make([]byte, crypto.TagSize)...)); err != nil || n != 1 {
		t.Fatalf("recordConsumers = %d, %v; want 1", n, err)
	}
	if n, err := recordConsumers(wj); err != nil || n != 1 {
		t.Fatalf("recordConsumers(JSON) = %d, %v; want 1", n, err)
	}
	t.Logf("stored body: %d bytes as CBOR, %d as JSON", len(b), len(wj))
}

func BenchmarkRecordCodec(b *testing.B) {
	r := sampleRecord()
	cb := marshalRecord(r)
	jb, _ := json.Marshal(r)
	b.Run("encode/cbor", func(b *testing.B) {
		for b.Loop() {
			marshalRecord(r)
		}
	})
	b.Run("encode/reflect", func(b *testing.B) {
		for b.Loop() {
			recordEnc.Marshal(r)
		}
	})
	b.Run("encode/json", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(r)
		}
	})
	b.Run("decode/cbor", func(b *testing.B) {
		for b.Loop() {
			decodeRecord(cb)
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		for b.Loop() {
			decodeRecord(jb)
		}
	})
}
