package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keywarden/keywarden/kms/store"
	"github.com/keywarden/keywarden/kms/store/storetest"
)

func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "keywarden.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func putOp(key string) []store.Op { return []store.Op{store.Put(key, []byte(key))} }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "keywarden.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// stall makes the committer block inside db.Update, behind a write tx held
// by the test, with one request of its own in flight. New Txns then queue
// up. release lets everything proceed.
func stall(t *testing.T, s *Store) (release func()) {
	t.Helper()
	s.wal.mu.Lock() // the committer's next append waits here
	r := &request{ops: putOp("stall"), done: make(chan error, 1)}
	if err := s.enqueue(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return r.state.Load() == taken })
	return func() {
		s.wal.mu.Unlock()
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
	}
}

// txnAll runs one Txn per key concurrently and returns a wait for them.
func txnAll(t *testing.T, s *Store, keys []string) (wait func()) {
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			if err := s.Txn(context.Background(), nil, putOp(k)); err != nil {
				t.Errorf("Txn %s: %v", k, err)
			}
		})
	}
	return wg.Wait
}

func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("key/%03d", i)
	}
	return ks
}

func TestCoalescing(t *testing.T) {
	t.Run("natural", func(t *testing.T) {
		// 64 writers released at once: while the first commit fsyncs, the
		// rest queue and share the next one.
		s := openTemp(t, Options{})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, k := range keys(64) {
			wg.Go(func() {
				<-start
				if err := s.Txn(t.Context(), nil, putOp(k)); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		st := s.Stats()
		t.Logf("64 Txns in %d commits", st.Commits)
		if st.Txns != 64 || st.Commits > 16 {
			t.Fatalf("Stats = %+v; want 64 txns in at most 16 commits", st)
		}
	})
	t.Run("exact", func(t *testing.T) {
		s := openTemp(t, Options{})
		release := stall(t, s)
		wait := txnAll(t, s, keys(64))
		waitFor(t, func() bool { return len(s.queue) == 64 })
		release()
		wait()
		// The stalled request's commit, then all 64 in one.
		if st := s.Stats(); st.Commits != 2 || st.Txns != 65 || st.WALSyncs != 2 {
			t.Fatalf("Stats = %+v; want {Commits:2 Txns:65}", st)
		}
	})
	t.Run("MaxBatch", func(t *testing.T) {
		s := openTemp(t, Options{MaxBatch: 16})
		release := stall(t, s)
		wait := txnAll(t, s, keys(64))
		waitFor(t, func() bool { return len(s.queue) == 16 })
		release()
		wait()
		// 64 Txns cannot fit in fewer than 4 batches of 16.
		if st := s.Stats(); st.Txns != 65 || st.Commits < 1+4 {
			t.Fatalf("Stats = %+v; want 65 txns in at least 5 commits", st)
		}
	})
}

// TestBatchIsolation: requests sharing a commit see each other in order; a
// conflict fails only its own request.
func TestBatchIsolation(t *testing.T) {
	s := openTemp(t, Options{})
	release := stall(t, s)
	type call struct {
		cmps []store.Cmp
		ops  []store.Op
		want error
	}
	calls := []call{
		{[]store.Cmp{{Key: "a"}}, []store.Op{store.Put("a", []byte("1"))}, nil},
		{[]store.Cmp{{Key: "a"}}, []store.Op{store.Put("a", []byte("x")), store.Put("b", []byte("x"))}, store.ErrConflict},
		{[]store.Cmp{{Key: "a", Version: 1}}, []store.Op{store.Put("a", []byte("2"))}, nil},
		{[]store.Cmp{{Key: "a", Version: 2}}, []store.Op{store.Delete("a"), store.Put("c", []byte("3"))}, nil},
		{[]store.Cmp{{Key: "a"}, {Key: "c", Version: 1}}, []store.Op{store.Put("a", []byte("4"))}, nil},
	}
	errs := make([]chan error, len(calls))
	for i, c := range calls {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- s.Txn(t.Context(), c.cmps, c.ops) }()
		// Queue them one by one so their order is known.
		waitFor(t, func() bool { return len(s.queue) == i+1 })
	}
	release()
	for i, c := range calls {
		if err := <-errs[i]; !errors.Is(err, c.want) {
			t.Errorf("call %d: %v; want %v", i, err, c.want)
		}
	}
	if st := s.Stats(); st.Commits != 2 {
		t.Errorf("Stats = %+v; want the 5 calls in one commit", st)
	}
	for k, want := range map[string]string{"a": "4", "c": "3"} {
		kv, err := s.Get(t.Context(), k)
		if err != nil || string(kv.Value) != want || kv.Version != 1 {
			t.Errorf("Get(%s) = %+v, %v; want %s v1", k, kv, err, want)
		}
	}
	if _, err := s.Get(t.Context(), "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("b written by a conflicting Txn: %v", err)
	}
}

// TestTxnAbandoned: a Txn that returns a context error wrote nothing, even
// when its deadline passes while it waits in the queue.
func TestTxnAbandoned(t *testing.T) {
	s := openTemp(t, Options{})
	release := stall(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := s.Txn(ctx, nil, putOp("late")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Txn = %v; want DeadlineExceeded", err)
	}
	release()
	// FIFO: once this commits, the committer has passed the abandoned one.
	if err := s.Txn(t.Context(), nil, putOp("after")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "late"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("abandoned Txn was written: %v", err)
	}
	if st := s.Stats(); st.Txns != 2 {
		t.Fatalf("Stats = %+v; want the abandoned Txn skipped", st)
	}
}

func TestCloseDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywarden.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	release := stall(t, s)
	ks := keys(10)
	wait := txnAll(t, s, ks)
	waitFor(t, func() bool { return len(s.queue) == len(ks) })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, s.closed.Load)
	if err := s.Txn(t.Context(), nil, putOp("refused")); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Txn while closing = %v; want ErrClosed", err)
	}
	release()
	wait() // every queued Txn succeeded (txnAll reports errors)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kvs, err := s.List(t.Context(), "key/", "", 0)
	if err != nil || len(kvs) != len(ks) {
		t.Fatalf("after reopen: %d keys, %v; want %d", len(kvs), err, len(ks))
	}
}

func TestInvalid(t *testing.T) {
	s := openTemp(t, Options{})
	tests := []struct {
		name string
		cmps []store.Cmp
		ops  []store.Op
	}{
		{"empty key", nil, []store.Op{store.Put("ok", nil), store.Put("", []byte("v"))}},
		{"empty delete key", nil, []store.Op{store.Delete("")}},
		{"empty compare key", []store.Cmp{{Key: ""}}, putOp("ok")},
		{"negative version", []store.Cmp{{Key: "ok", Version: -1}}, putOp("ok")},
		{"key too large", nil, putOp(strings.Repeat("k", bbolt.MaxKeySize+1))},
	}
	for _, tc := range tests {
		err := s.Txn(t.Context(), tc.cmps, tc.ops)
		if err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: Txn = %v; want a validation error", tc.name, err)
		}
	}
	if _, err := s.Get(t.Context(), "ok"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("invalid Txn wrote: %v", err)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywarden.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Txn(t.Context(), nil, []store.Op{store.Put("k", []byte("v"))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kv, err := s.Get(t.Context(), "k")
	if err != nil || string(kv.Value) != "v" || kv.Version != 3 {
		t.Fatalf("Get = %+v, %v; want v at version 3", kv, err)
	}
}

func TestSchemaVersion(t *testing.T) {
	be := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	tests := []struct {
		name  string
		setup func(tx *bbolt.Tx) error
		want  []string // substrings of the error
	}{
		{"newer", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(schemaKey, be(3))
		}, []string{"schema version 3", "supports 1"}},
		{"unknown", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(schemaKey, be(0))
		}, []string{"schema version 0", "supports 1"}},
		{"unreadable", func(tx *bbolt.Tx) error {
			return tx.Bucket(metaBucket).Put(schemaKey, []byte("one"))
		}, []string{"unreadable schema version", "supports 1"}},
		{"no meta", func(tx *bbolt.Tx) error {
			return tx.DeleteBucket(metaBucket)
		}, []string{"without schema version"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keywarden.db")
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(tc.setup); err != nil {
				t.Fatal(err)
			}
			db.Close()

			_, err = Open(path, Options{Timeout: 100 * time.Millisecond})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			// The refused file was released, not left locked.
			db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("file still locked after refused Open: %v", err)
			}
			db.Close()
		})
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywarden.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file, so a second Open in this process contends
	// exactly as another process would.
	start := time.Now()
	_, err = Open(path, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v; want ErrLocked", err)
	}
	if want := fmt.Sprintf("store %s is locked by another process", path); err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("gave up after %v; want the 100ms timeout", d)
	}
	s.Close()
	s, err = Open(path, Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywarden.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("mode %v; want 0600", m)
	}
}
