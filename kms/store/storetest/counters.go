package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/keywarden/keywarden/kms/store"
)

func counter(t *testing.T, s store.Store, key string) int64 {
	t.Helper()
	kv, err := s.Get(t.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return store.CounterValue(kv.Value)
}

// testAdd: adds sum, merge within one transaction, and a failed compare
// adds nothing.
func testAdd(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, d := range []int64{1, 5, -2} {
		if err := s.Txn(ctx, nil, []store.Op{store.Add("n", d)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := counter(t, s, "n"); n != 4 {
		t.Fatalf("counter = %d, want 4", n)
	}
	if err := s.Txn(ctx, nil, []store.Op{store.Add("n", 3), store.Add("n", 3), store.Put("x", []byte("1"))}); err != nil {
		t.Fatal(err)
	}
	if n := counter(t, s, "n"); n != 10 {
		t.Fatalf("counter = %d after two adds of 3, want 10", n)
	}
	err := s.Txn(ctx, []store.Cmp{{Key: "x", Version: 7}}, []store.Op{store.Add("n", 100), store.Put("y", []byte("1"))})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Txn with a failing compare = %v, want ErrConflict", err)
	}
	if n := counter(t, s, "n"); n != 10 {
		t.Fatalf("counter = %d after a refused add, want 10", n)
	}
	want(t, s, "y", "", 0)
}

// testConcurrentAdd: writers that add to one counter while creating their
// own keys never conflict, and the counter is the number of keys.
func testConcurrentAdd(t *testing.T, s store.Store) {
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("item/%d/%d", w, i)
				if err := s.Txn(t.Context(), []store.Cmp{{Key: key}}, []store.Op{store.Put(key, []byte("v")), store.Add("count", 1)}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent add: %v", err)
	}
	if n := counter(t, s, "count"); n != writers*each {
		t.Fatalf("counter = %d, want %d", n, writers*each)
	}
}

// testScanNth: Scan walks in key order from after and stops when told; Nth
// finds the key n entries on, or none.
func testScanNth(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 1500 // more than one page of a paging backend
	var ops []store.Op
	for i := range n {
		ops = append(ops, store.Put(fmt.Sprintf("r/%05d", i), []byte(fmt.Sprint(i))))
		if len(ops) == 100 {
			if err := s.Txn(ctx, nil, ops); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	put(t, s, "rr", "outside")
	put(t, s, "q", "outside")
	i := 10
	err := store.Scan(ctx, s, "r/", "00010", func(k string, v []byte) bool {
		if k != fmt.Sprintf("r/%05d", i) || string(v) != fmt.Sprint(i) {
			t.Fatalf("entry %d = %q %q", i, k, v)
		}
		i++
		return true
	})
	if err != nil || i != n {
		t.Fatalf("Scan ended at %d (%v), want %d", i, err, n)
	}
	seen := 0
	if err := store.Scan(ctx, s, "r/", "", func(string, []byte) bool { seen++; return seen < 3 }); err != nil || seen != 3 {
		t.Fatalf("Scan told to stop after 3 saw %d (%v)", seen, err)
	}
	for _, tc := range []struct {
		after string
		n     int
		want  string
	}{
		{"", 0, "r/00000"}, {"", 1499, "r/01499"}, {"", 1500, ""}, {"", 1024, "r/01024"},
		{"00100", 1000, "r/01100"}, {"00100", 1400, ""}, {"zzz", 0, ""},
	} {
		got, err := store.Nth(ctx, s, "r/", tc.after, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("Nth(after %q, %d) = %q, %v; want %q", tc.after, tc.n, got, err, tc.want)
		}
	}
	if c, ok := s.(store.Counter); ok {
		for prefix, want := range map[string]int64{"r/": n, "r": n + 1, "r/000": 100, "x": 0, "": n + 2} {
			if got, err := c.Count(ctx, prefix); err != nil || got != want {
				t.Errorf("Count(%q) = %d, %v; want %d", prefix, got, err, want)
			}
		}
	}
	testScanRaw(t, s, n) // deletes two
}

// testScanRaw walks testScanNth's keys r/00000..r/<n-1> both ways, from a
// key and from the end, with two of them deleted (deletes may still be in
// a backend's overlay while the rest is on disk).
func testScanRaw(t *testing.T, s store.Store, n int) {
	ctx := t.Context()
	walk := func(from string, reverse bool, stop int) []string {
		var got []string
		err := store.ScanRaw(ctx, s, "r/", from, reverse, func(k, v []byte) bool {
			if string(k[2:]) != fmt.Sprintf("%05s", v) {
				t.Fatalf("%q holds %q", k, v)
			}
			got = append(got, string(k))
			return len(got) != stop
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	keys := func(from, to, step int) []string { // from, from+step, ... before to
		var out []string
		for i := from; i != to; i += step {
			if i != 50 && i != n-1 {
				out = append(out, fmt.Sprintf("r/%05d", i))
			}
		}
		return out
	}
	if err := s.Txn(ctx, nil, []store.Op{store.Delete("r/00050"), store.Delete(fmt.Sprintf("r/%05d", n-1))}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from    string
		reverse bool
		stop    int
		want    []string
	}{
		{"", false, 0, keys(0, n, 1)}, {"00010", false, 0, keys(10, n, 1)}, {"", true, 0, keys(n-1, -1, -1)},
		{"00100", true, 0, keys(99, -1, -1)}, {"00051", true, 3, keys(49, 46, -1)}, {"", true, 2, keys(n-2, n-4, -1)},
		{"00000", true, 0, nil}, {"zzz", true, 1, keys(n-2, n-3, -1)}, {"zzz", false, 0, nil},
	} {
		if got := walk(tc.from, tc.reverse, tc.stop); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ScanRaw(from %q, reverse %v, stop %d): %d keys %.80v, want %d %.80v", tc.from, tc.reverse, tc.stop, len(got), got, len(tc.want), tc.want)
		}
	}
}
