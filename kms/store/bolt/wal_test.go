package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keywarden/keywarden/kms/store"
	"github.com/keywarden/keywarden/kms/store/storetest"
)

// The store's contract holds while the flusher runs all the time.
func TestConformanceFlushing(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t, Options{FlushInterval: time.Millisecond})
	})
}

// crash drops s as a SIGKILL would: no flush, no checkpoint, files shut.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.closed.Store(true)
	close(s.stopFlush)
	<-s.flushDone
	s.wal.close()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// model is what the store should hold: key → value; counters as values.
type model map[string]string

func checkModel(t *testing.T, s *Store, m model, when string) {
	t.Helper()
	ctx := t.Context()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		kv, err := s.Get(ctx, k)
		if err != nil || string(kv.Value) != m[k] {
			t.Fatalf("%s: Get(%s) = %q, %v; want %q", when, k, kv.Value, err, m[k])
		}
	}
	for _, k := range []string{"a/gone", "b/gone"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: Get(%s) = %v; want not found", when, k, err)
		}
	}
	list, err := s.List(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range list {
		got = append(got, kv.Key+"="+string(kv.Value))
	}
	var want []string
	for _, k := range keys {
		want = append(want, k+"="+m[k])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: List = %q; want %q", when, got, want)
	}
	var scanned []string
	if err := s.Scan(ctx, "b/", "", func(k string, v []byte) bool {
		scanned = append(scanned, k+"="+string(v))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	var wantB []string
	for _, w := range want {
		if w[:2] == "b/" {
			wantB = append(wantB, w)
		}
	}
	if !slices.Equal(scanned, wantB) {
		t.Fatalf("%s: Scan(b/) = %q; want %q", when, scanned, wantB)
	}
	for n := range len(keys) + 1 {
		k, err := s.Nth(ctx, "", "", n)
		want := ""
		if n < len(keys) {
			want = keys[n]
		}
		if err != nil || k != want {
			t.Fatalf("%s: Nth(%d) = %q, %v; want %q", when, n, k, err, want)
		}
	}
}

// TestOverlayMerge: reads merge the overlay (puts, tombstones, counters)
// over bbolt exactly, before a flush, after it, and after a crash+replay.
func TestOverlayMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywarden.db")
	s, err := Open(path, Options{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	txn := func(ops ...store.Op) {
		t.Helper()
		if err := s.Txn(ctx, nil, ops); err != nil {
			t.Fatal(err)
		}
	}
	counter := func(n int64) string { return string(store.EncodeCounter(n)) }
	// In bbolt: a/1..a/4, b/1, b/gone, a/gone, c/n = 5.
	txn(store.Put("a/1", []byte("1")), store.Put("a/2", []byte("2")), store.Put("a/3", []byte("3")),
		store.Put("a/4", []byte("4")), store.Put("b/1", []byte("b1")), store.Put("b/gone", []byte("x")),
		store.Put("a/gone", []byte("x")), store.Add("c/n", 5))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.ov.m); n != 0 {
		t.Fatalf("%d overlay entries after a flush", n)
	}
	// In the overlay only: overwrite, tombstones, new keys between and
	// around bbolt's, a counter on top of bbolt's total.
	txn(store.Put("a/2", []byte("2'")), store.Delete("a/gone"), store.Delete("b/gone"),
		store.Put("a/0", []byte("0")), store.Put("a/25", []byte("25")), store.Put("b/9", []byte("b9")),
		store.Add("c/n", 3))
	txn(store.Add("c/n", -1), store.Put("a/3", []byte("3'")), store.Delete("a/3"), store.Put("a/3", []byte("3''")))
	m := model{"a/0": "0", "a/1": "1", "a/2": "2'", "a/25": "25", "a/3": "3''", "a/4": "4",
		"b/1": "b1", "b/9": "b9", "c/n": counter(7)}
	if len(s.ov.m) == 0 {
		t.Fatal("nothing in the overlay: the test tests nothing")
	}
	checkModel(t, s, m, "overlay over bbolt")
	if kv, _ := s.Get(ctx, "a/2"); kv.Version != 2 {
		t.Fatalf("a/2 version %d, want 2", kv.Version)
	}
	// After a delete the version starts again.
	if kv, _ := s.Get(ctx, "a/3"); kv.Version != 1 {
		t.Fatalf("a/3 version %d, want 1", kv.Version)
	}
	crash(t, s)
	if s, err = Open(path, Options{FlushInterval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	checkModel(t, s, m, "after crash and replay")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	checkModel(t, s, m, "flushed")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReplayIdempotent: the WAL holds final values, so replaying records
// bbolt already has (applied reset to 0) changes nothing: counters do not
// count twice.
func TestReplayIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywarden.db")
	s, err := Open(path, Options{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := s.Txn(t.Context(), nil, []store.Op{store.Add("n", 2), store.Put(fmt.Sprint("k", i), []byte("v"))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil { // bbolt has it all; the WAL still does too
		t.Fatal(err)
	}
	crash(t, s)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return putApplied(tx, 0, 0) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for range 2 {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		kv, err := s.Get(t.Context(), "n")
		if err != nil || store.CounterValue(kv.Value) != 20 || kv.Version != 10 {
			t.Fatalf("after replay: n = %d v%d (%v); want 20 v10", store.CounterValue(kv.Value), kv.Version, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOneSyncPerTxn counts the WAL's fdatasyncs: one per Txn for a single
// writer, one per group under concurrency; bbolt syncs only on the flusher.
func TestOneSyncPerTxn(t *testing.T) {
	s := openTemp(t, Options{FlushInterval: time.Hour})
	var syncs int
	var mu sync.Mutex
	s.wal.syncFn = func(f *os.File) error {
		mu.Lock()
		syncs++
		mu.Unlock()
		return fdatasync(f)
	}
	for i := range 50 {
		if err := s.Txn(t.Context(), nil, putOp(fmt.Sprint("one/", i))); err != nil {
			t.Fatal(err)
		}
	}
	// A lone writer commits on its own goroutine (commitHere).
	if st := s.Stats(); syncs != 50 || st.Commits != 50 || st.Flushes != 0 || st.Here != 50 {
		t.Fatalf("50 sequential Txns: %d WAL syncs, %+v; want 50, all by the caller, no flush", syncs, st)
	}
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 20 {
				if err := s.Txn(t.Context(), nil, putOp(fmt.Sprintf("many/%d/%d", w, i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if group := syncs - 50; uint64(group) != st.Commits-50 || group >= 640 || group < 20 {
		t.Fatalf("640 concurrent Txns: %d WAL syncs, %+v; want one per group, fewer than Txns", group, st)
	}
	t.Logf("640 concurrent Txns in %d WAL syncs", syncs-50)
}

// TestTornTail: a last record cut short (a crash mid-write) is cut and
// reported at Open; the records before it are replayed.
func TestTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywarden.db")
	s, err := Open(path, Options{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Txn(t.Context(), nil, putOp(fmt.Sprint("k", i))); err != nil {
			t.Fatal(err)
		}
	}
	seg, end := s.wal.segs[len(s.wal.segs)-1].path, s.wal.off
	crash(t, s)
	if err := os.Truncate(seg, end-3); err != nil { // the last record loses 3 bytes
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if torn := s.Torn(); len(torn) != 1 {
		t.Fatalf("Torn() = %q; want the cut reported", torn)
	}
	for i := range 4 {
		if _, err := s.Get(t.Context(), fmt.Sprint("k", i)); err != nil {
			t.Fatalf("k%d before the torn record: %v", i, err)
		}
	}
	if _, err := s.Get(t.Context(), "k4"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("k4, the torn record: %v; want not found", err)
	}
	// The store goes on, numbering after the last good record.
	if err := s.Txn(t.Context(), nil, putOp("k5")); err != nil {
		t.Fatal(err)
	}
}

// TestWALSyncFails: a failed WAL sync fails the batch and applies none of
// it; the next Txn goes to a new segment and succeeds; a reopen replays
// only what was acknowledged.
func TestWALSyncFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywarden.db")
	s, err := Open(path, Options{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Txn(ctx, nil, putOp("before")); err != nil {
		t.Fatal(err)
	}
	s.wal.syncFn = func(*os.File) error { return syscall.EIO }
	var notes []uint64
	s.Follow(0, func(seq uint64, _ []byte) { notes = append(notes, seq) }, nil)
	if err := s.TxnNote(ctx, nil, putOp("failed"), []byte("n")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Txn with the WAL sync failing = %v; want EIO", err)
	}
	if _, err := s.Get(ctx, "failed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed Txn is visible: %v", err)
	}
	s.wal.syncFn = fdatasync
	if err := s.TxnNote(ctx, nil, putOp("after"), []byte("n")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(notes, []uint64{1}) {
		t.Fatalf("follower saw notes %v; want [1]: the failed one has none", notes)
	}
	crash(t, s)
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for k, want := range map[string]bool{"before": true, "failed": false, "after": true} {
		if _, err := s.Get(ctx, k); (err == nil) != want {
			t.Errorf("after reopen, %s: %v", k, err)
		}
	}
	if n := s.Notes(); len(n) != 1 || n[0].Seq != 1 {
		t.Errorf("notes after reopen: %+v", n)
	}
}

// TestNotesCheckpoint: notes stay in the WAL until the checkpoint hook
// succeeds; the follower sees them in order; a conflict leaves no note.
func TestNotesCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywarden.db")
	s, err := Open(path, Options{FlushInterval: time.Hour, SegmentBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var seen []uint64
	hookErr := errors.New("trail down")
	s.Follow(0, func(seq uint64, _ []byte) { seen = append(seen, seq) }, func() error { return hookErr })
	big := make([]byte, 1500) // a few records per 4 KiB segment
	for i := range 12 {
		k := fmt.Sprint("k", i)
		if err := s.TxnNote(ctx, []store.Cmp{{Key: k}}, []store.Op{store.Put(k, big)}, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TxnNote(ctx, []store.Cmp{{Key: "k0"}}, putOp("k0"), []byte("conflict")); !errors.Is(err, store.ErrConflict) {
		t.Fatal(err)
	}
	if len(seen) != 12 || seen[0] != 1 || seen[11] != 12 {
		t.Fatalf("follower saw %v", seen)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.wal.segs); n < 3 {
		t.Fatalf("%d segments kept with the hook failing; want them all", n)
	}
	hookErr = nil
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.wal.segs); n != 1 {
		t.Fatalf("%d segments after a checkpoint; want the current one", n)
	}
	crash(t, s)
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, "k11"); err != nil {
		t.Fatal(err)
	}
	// The next note is 13, not 1: numbering survives the dropped segments.
	var next uint64
	s.Follow(0, func(seq uint64, _ []byte) { next = seq }, nil)
	if err := s.TxnNote(ctx, nil, putOp("k12"), []byte("k12")); err != nil || next != 13 {
		t.Fatalf("next note %d (%v); want 13", next, err)
	}
}

// TestReadsDuringFlushes: a reader never misses an acknowledged key while
// the flusher moves keys from the overlay into bbolt.
func TestReadsDuringFlushes(t *testing.T) {
	s := openTemp(t, Options{FlushInterval: time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	acked := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			if err := s.Txn(ctx, nil, []store.Op{store.Put(fmt.Sprintf("r/%06d", i), []byte("v")), store.Add("n", 1)}); err != nil {
				return
			}
			mu.Lock()
			acked = i + 1
			mu.Unlock()
		}
	}()
	reads := 0
	for ctx.Err() == nil {
		mu.Lock()
		floor := acked
		mu.Unlock()
		list, err := s.List(ctx, "r/", "", 0)
		if err != nil {
			break
		}
		if len(list) < floor {
			t.Fatalf("List saw %d keys, %d were acknowledged before it", len(list), floor)
		}
		for i, kv := range list {
			if kv.Key != fmt.Sprintf("r/%06d", i) {
				t.Fatalf("List[%d] = %s: a key missed", i, kv.Key)
			}
		}
		if floor > 0 {
			if _, err := s.Get(ctx, fmt.Sprintf("r/%06d", floor-1)); err != nil && ctx.Err() == nil {
				t.Fatalf("Get of acked key %d: %v", floor-1, err)
			}
		}
		reads++
	}
	<-done
	st := s.Stats()
	if st.Flushes < 10 {
		t.Fatalf("only %d flushes: the test tests nothing", st.Flushes)
	}
	t.Logf("%d reads, %d writes, %d flushes", reads, acked, st.Flushes)
}

// A clean Close leaves no preallocated segment for the next Open to read:
// without notes the segment goes, with notes it is cut to its records.
func TestCloseRetiresSegment(t *testing.T) {
	ctx := context.Background()
	segBytes := func(dir string) []int64 {
		es, _ := os.ReadDir(dir)
		var out []int64
		for _, e := range es {
			if fi, err := e.Info(); err == nil && filepath.Ext(e.Name()) == walExt {
				out = append(out, fi.Size())
			}
		}
		return out
	}
	for _, withNotes := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "keywarden.db")
		s, err := Open(path, Options{SegmentBytes: 4 << 20})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			k := fmt.Sprintf("k%d", i)
			if withNotes {
				err = s.TxnNote(ctx, nil, putOp(k), []byte(k))
			} else {
				err = s.Txn(ctx, nil, putOp(k))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		sizes := segBytes(path + ".wal")
		switch {
		case !withNotes && len(sizes) != 0:
			t.Fatalf("without notes, segments of %v bytes left after Close", sizes)
		case withNotes && (len(sizes) != 1 || sizes[0] == 0 || sizes[0] >= 4<<20):
			t.Fatalf("with notes, segments of %v bytes left after Close; want one cut to its records", sizes)
		}
		s, err = Open(path, Options{SegmentBytes: 4 << 20})
		if err != nil {
			t.Fatal(err)
		}
		kv, err := s.Get(ctx, "k9")
		if err != nil || string(kv.Value) != "k9" {
			t.Fatalf("after reopen: %+v %v", kv, err)
		}
		if withNotes && len(s.Notes()) != 10 {
			t.Fatalf("after reopen: %d notes, want the 10 kept", len(s.Notes()))
		}
		s.Close()
	}
}
