//go:build linux

package bolt

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms/store"
)

func trimKey(i int) string { return fmt.Sprintf("t/%07d", i) }

// trimValue is i's value, 1 KiB that differ from every other key's.
func trimValue(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("%07d|", i)), 128)
}

// fillTrim writes keys from..to-1 in Txns of 256 and flushes them to bbolt.
func fillTrim(t testing.TB, s *Store, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i += 256 {
		var ops []store.Op
		for j := i; j < min(i+256, to); j++ {
			ops = append(ops, store.Put(trimKey(j), trimValue(j)))
		}
		if err := s.Txn(ctx, nil, ops); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}

// fileRSS is the process's file-backed RSS now.
func fileRSS(t testing.TB) int64 {
	var r statmReader
	if !r.open() {
		t.Skip("no /proc/self/statm")
	}
	defer r.close()
	return r.fileRSS()
}

// scanAll reads every t/ entry through a walk and checks the values.
func scanAll(t testing.TB, s *Store, want int) {
	t.Helper()
	n := 0
	err := s.Scan(context.Background(), "t/", "", func(k string, v []byte) bool {
		var i int
		if _, err := fmt.Sscanf(k, "t/%07d", &i); err != nil || !bytes.Equal(v, trimValue(i)) {
			t.Errorf("%s: wrong value %.20q", k, v)
			return false
		}
		n++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < want {
		t.Fatalf("scan saw %d entries, want at least %d", n, want)
	}
}

// A walk over a store much larger than the budget keeps the file pages
// mapped near the budget; without the trimmer they are the whole file.
func TestTrimBudget(t *testing.T) {
	const n = 48 << 10 // ~60 MB of pages
	const budget = 8 << 20
	for _, c := range []struct {
		budget  int64
		trimmed bool
	}{{-1, false}, {budget, true}} {
		t.Run(fmt.Sprint(c.budget), func(t *testing.T) {
			s := openTemp(t, Options{MapBudget: c.budget})
			fillTrim(t, s, 0, n)
			// The trimmer's own sample must not run between: off for now.
			before := fileRSS(t)
			scanAll(t, s, n)
			grew := fileRSS(t) - before
			t.Logf("budget %d: file RSS grew %d MiB over the scan, %d trims", c.budget, grew>>20, s.Trims())
			if c.trimmed {
				// Slack: 4096 entries' pages between two checks.
				if grew > budget+12<<20 || s.Trims() == 0 {
					t.Fatalf("file RSS grew %d MiB with a budget of %d MiB (%d trims)", grew>>20, budget>>20, s.Trims())
				}
			} else if grew < 40<<20 {
				t.Fatalf("untrimmed scan mapped only %d MiB: the test store is too small to tell", grew>>20)
			}
		})
	}
}

// Point reads check the budget too (every 16th): reads over a store much
// larger than the budget keep the file pages near it.
func TestTrimBudgetReads(t *testing.T) {
	const n = 48 << 10
	const budget = 8 << 20
	for _, c := range []struct {
		budget  int64
		trimmed bool
	}{{-1, false}, {budget, true}} {
		t.Run(fmt.Sprint(c.budget), func(t *testing.T) {
			s := openTemp(t, Options{MapBudget: c.budget})
			fillTrim(t, s, 0, n)
			ctx := context.Background()
			before, most := fileRSS(t), int64(0)
			for r := range n / 2 {
				i := (r * 7919) % n
				kv, err := s.Get(ctx, trimKey(i))
				if err != nil || !bytes.Equal(kv.Value, trimValue(i)) {
					t.Fatalf("%s: %v, value %.20q", trimKey(i), err, kv.Value)
				}
				if r%16 == 0 {
					most = max(most, fileRSS(t)-before)
				}
			}
			t.Logf("budget %d: file RSS grew at most %d MiB over the reads, %d trims", c.budget, most>>20, s.Trims())
			if c.trimmed {
				// Slack: 16 reads' faults (a large page-cache folio each)
				// between two checks.
				if most > budget+24<<20 || s.Trims() == 0 {
					t.Fatalf("file RSS grew %d MiB with a budget of %d MiB (%d trims)", most>>20, budget>>20, s.Trims())
				}
			} else if most < 40<<20 {
				t.Fatalf("untrimmed reads mapped only %d MiB: the test store is too small to tell", most>>20)
			}
		})
	}
}

// Trims race reads, writes that grow the file past bbolt's mapping (a
// remap) and walks: every value read is the one written.
func TestTrimConcurrent(t *testing.T) {
	s := openTemp(t, Options{MapBudget: 1}) // any mapped page is over
	const first = 8 << 10
	fillTrim(t, s, 0, first)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stop atomic.Bool // set when the writer is done
	var written atomic.Int64
	written.Store(first)
	var wg sync.WaitGroup
	fail := make(chan error, 16)
	// A writer: 56k more keys take the file from ~12 MB past 64 MB.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stop.Store(true)
		for i := first; i < 64<<10 && ctx.Err() == nil; i += 256 {
			var ops []store.Op
			for j := i; j < i+256; j++ {
				ops = append(ops, store.Put(trimKey(j), trimValue(j)))
			}
			if err := s.Txn(ctx, nil, ops); err != nil {
				fail <- err
				return
			}
			written.Store(int64(i + 256))
		}
	}()
	// Readers and a walker.
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := r; !stop.Load(); k += 7919 {
				i := k % int(written.Load())
				kv, err := s.Get(ctx, trimKey(i))
				if err != nil {
					fail <- err
					return
				}
				if !bytes.Equal(kv.Value, trimValue(i)) {
					fail <- fmt.Errorf("%s: wrong value", trimKey(i))
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			scanAll(t, s, first)
		}
	}()
	// A trimmer beside the store's own, as fast as it goes.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			tx, err := s.db.Begin(false)
			if err != nil {
				fail <- err
				return
			}
			s.trimIn(tx)
			tx.Rollback()
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	if s.Trims() < 10 {
		t.Fatalf("%d trims: the race was not exercised", s.Trims())
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the writer did not finish in time")
	}
	info, _ := s.db.Begin(false)
	size := info.Size()
	info.Rollback()
	if size < 64<<20 {
		t.Fatalf("file %d MiB: the writes never grew it past a remap", size>>20)
	}
	scanAll(t, s, int(written.Load()))
}
