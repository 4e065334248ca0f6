package kms_test

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

// BenchmarkCreateBolt is the kms create path on a durable bolt store, 32
// creators in one project, reporting the process's CPU (user + system)
// per create beside the wall time: what each op a create's transaction
// carries (the list index's among them) costs.
func BenchmarkCreateBolt(b *testing.B) { benchCreateBolt(b, false) }

// BenchmarkCreateBoltNameColumn is BenchmarkCreateBolt with the project's
// name column held (a name= list built it), so every create refreshes it.
func BenchmarkCreateBoltNameColumn(b *testing.B) { benchCreateBolt(b, true) }

func benchCreateBolt(b *testing.B, column bool) {
	svc := benchService(b)
	req := kms.CreateRequest{Name: "vol", Type: kms.Symmetric, Algorithm: "aes", BitLength: 256, Mode: "xts",
		Payload: make([]byte, 32), ContentType: "application/octet-stream"}
	if column {
		if _, err := svc.CreateSecret(ctx, creator, req); err != nil {
			b.Fatal(err)
		}
		if _, _, err := svc.ListSecrets(ctx, creator, kms.ListQuery{Name: "vo"}); err != nil || !svc.NameColumnHeld("p1") {
			b.Fatalf("no name column (%v)", err)
		}
	}
	b.SetParallelism(32)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.CreateSecret(ctx, creator, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCreateGetPair is a KMIP pair's kms work (a create served at
// creation, then its payload read) on a durable bolt store, 32 callers:
// the read finds the record the create cached.
func BenchmarkCreateGetPair(b *testing.B) {
	svc := benchService(b)
	req := kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 256, State: kms.PreActive,
		Payload: make([]byte, 32), ContentType: "application/octet-stream", ServedAtCreation: true,
		Attributes: map[string]string{kms.AttrSensitive: "b:false"}}
	b.SetParallelism(32)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sec, err := svc.CreateSecret(ctx, creator, req)
			if err == nil {
				_, _, err = svc.GetPayload(ctx, creator, sec.ID)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// benchService is a Service on a bolt store with the server's default
// options (kmstest's store has small WAL segments, which roll over more
// often than a server's would).
func benchService(b *testing.B) *kms.Service {
	_, root := newStore(b)
	st, err := bolt.Open(filepath.Join(b.TempDir(), "kw.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return newServiceWith(b, kms.Config{Store: st, Master: root})
}
