package bolt

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/keywarden/keywarden/kms/store"
)

// BenchmarkTxnParallel: create-if-absent of unique keys from many goroutines;
// txns/commit is the achieved group-commit batch size.
func BenchmarkTxnParallel(b *testing.B) {
	for _, p := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("par=%d", p), func(b *testing.B) {
			s := openTemp(b, Options{})
			value := make([]byte, 256)
			var n atomic.Int64
			b.SetParallelism(p)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := fmt.Sprintf("bench/%012d", n.Add(1))
					err := s.Txn(b.Context(), []store.Cmp{{Key: k}}, []store.Op{store.Put(k, value)})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			st := s.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			if st.Commits > 0 {
				b.ReportMetric(float64(st.Txns)/float64(st.Commits), "txns/commit")
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	const keys = 10000
	s := openTemp(b, Options{})
	value := make([]byte, 256)
	for lo := 0; lo < keys; lo += 1000 {
		ops := make([]store.Op, 0, 1000)
		for i := lo; i < lo+1000; i++ {
			ops = append(ops, store.Put(fmt.Sprintf("get/%06d", i), value))
		}
		if err := s.Txn(b.Context(), nil, ops); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := fmt.Sprintf("get/%06d", n.Add(7919)%keys) // stride over the key space
			if _, err := s.Get(b.Context(), k); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkFsync is the floor under one commit: a page write plus fsync on
// the disk holding the temp dir.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for i := 0; b.Loop(); i++ {
		page[0] = byte(i)
		if _, err := f.WriteAt(page, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTxnOneWriter is one writer's Txn after Txn: its latency is the
// commit path's (with "nosync", without the disk: the hand-offs and CPU).
func BenchmarkTxnOneWriter(b *testing.B) {
	for _, sync := range []bool{true, false} {
		name := "sync"
		if !sync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			s := openTemp(b, Options{})
			if !sync {
				s.wal.syncFn = func(*os.File) error { return nil }
			}
			value := make([]byte, 256)
			i := 0
			for b.Loop() {
				i++
				k := fmt.Sprintf("bench/%012d", i)
				if err := s.Txn(b.Context(), []store.Cmp{{Key: k}}, []store.Op{store.Put(k, value)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
