package bolt

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keywarden/keywarden/kms/store"
)

// TestLazy: a lazy write is visible at once without a sync; its note
// reaches the follower only with the next sync, a durable write's (which
// covers it, notes in order) or the flusher's (before bbolt takes it).
func TestLazy(t *testing.T) {
	s := openTemp(t, Options{FlushInterval: time.Hour})
	ctx := t.Context()
	var mu sync.Mutex
	var seen []uint64
	s.Follow(0, func(seq uint64, _ []byte) { mu.Lock(); seen = append(seen, seq); mu.Unlock() }, nil)
	notes := func() []uint64 { mu.Lock(); defer mu.Unlock(); return slices.Clone(seen) }

	syncs := s.Stats().WALSyncs
	if err := s.TxnNoteLazy(ctx, []store.Cmp{{Key: "a"}}, putOp("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(ctx, "a"); err != nil || kv.Version != 1 {
		t.Fatalf("lazy write not visible: %+v %v", kv, err)
	}
	if n := s.Stats().WALSyncs - syncs; n != 0 {
		t.Fatalf("a lazy write synced the WAL %d times", n)
	}
	if got := notes(); len(got) != 0 {
		t.Fatalf("the note of an unsynced write reached the follower: %v", got)
	}
	// Its compares see it like any write.
	if err := s.TxnNoteLazy(ctx, []store.Cmp{{Key: "a"}}, putOp("a"), []byte("x")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create of a = %v; want a conflict", err)
	}
	if err := s.TxnNote(ctx, []store.Cmp{{Key: "a", Version: 1}}, putOp("a"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().WALSyncs - syncs; n != 1 {
		t.Fatalf("one durable write after a lazy one: %d syncs, want 1", n)
	}
	if got := notes(); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("after the durable write the follower has %v; want [1 2]", got)
	}
	if err := s.TxnNoteLazy(ctx, nil, putOp("b"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := notes(); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("after a flush the follower has %v; want [1 2 3]", got)
	}
	if n := s.Stats().WALSyncs - syncs; n != 2 {
		t.Fatalf("the flush synced the WAL %d times in all; want 2", n-1)
	}
}

// TestLazyMixedBatch: in one batch, lazy and durable writers are all
// answered, with one sync, and every note reaches the follower in order.
func TestLazyMixedBatch(t *testing.T) {
	s := openTemp(t, Options{FlushInterval: time.Hour})
	ctx := t.Context()
	var mu sync.Mutex
	var seen []uint64
	s.Follow(0, func(seq uint64, _ []byte) { mu.Lock(); seen = append(seen, seq); mu.Unlock() }, nil)
	release := stall(t, s)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			k := fmt.Sprint("k", i)
			txn := s.TxnNote
			if i%2 == 0 {
				txn = s.TxnNoteLazy
			}
			if err := txn(ctx, []store.Cmp{{Key: k}}, putOp(k), []byte(k)); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, func() bool { return len(s.queue) == 16 })
	syncs := s.Stats().WALSyncs
	release()
	wg.Wait()
	if n := s.Stats().WALSyncs - syncs; n != 2 {
		t.Fatalf("the stalled write and a mixed batch: %d syncs, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 16 || !slices.IsSorted(seen) || seen[0] != 1 || seen[15] != 16 {
		t.Fatalf("follower saw %v; want 1..16 in order", seen)
	}
}

// TestResolveErrorFailsBatch: a batch the committer cannot evaluate (a
// corrupt entry) fails every request of it; none is told it committed.
func TestResolveErrorFailsBatch(t *testing.T) {
	s := openTemp(t, Options{FlushInterval: time.Hour})
	err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(dataBucket).Put([]byte("bad"), []byte{1, 2, 3}) })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Txn(t.Context(), []store.Cmp{{Key: "bad", Version: 1}}, putOp("x")); err == nil {
		t.Fatal("a Txn comparing a corrupt entry was acknowledged")
	}
	if _, err := s.Get(t.Context(), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("x after the failed batch: %v", err)
	}
}
