package kms_test

import (
	"testing"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/kmstest"
)

// BenchmarkPayloadRead compares the two payload reads on one bolt service:
// GetPayload (a clone of the record for the caller) and ExportPayload
// (REST: the content type only, no clone).
func BenchmarkPayloadRead(b *testing.B) {
	st, root := kmstest.Bolt(b)
	svc := kmstest.Service(b, kms.Config{Store: st, Master: root})
	const n = 64
	ids := make([]string, n)
	for i := range ids {
		sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 256,
			Payload: make([]byte, 32), ContentType: "application/octet-stream"})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = sec.ID
		svc.GetPayload(ctx, creator, sec.ID) // the first read clears Fresh (a write)
	}
	b.Run("GetPayload", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_, pt, err := svc.GetPayload(ctx, creator, ids[i%n])
			if err != nil {
				b.Fatal(err)
			}
			crypto.Zero(pt)
		}
	})
	b.Run("ExportPayload", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ct, pt, err := svc.ExportPayload(ctx, creator, ids[i%n])
			if err != nil || ct != "application/octet-stream" {
				b.Fatal(ct, err)
			}
			crypto.Zero(pt)
		}
	})
}
