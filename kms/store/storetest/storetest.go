// Package storetest is the conformance suite every store.Store backend runs,
// so that bolt and etcd are interchangeable in fact, not only in type.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/keywarden/keywarden/kms/store"
)

// Run runs the suite. open must return a new, empty store for each call; Run
// closes every store it opens, possibly after the test closed it already, so
// a second Close must return nil or store.ErrClosed.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"Versions", testVersions},
		{"List", testList},
		{"Txn", testTxn},
		{"ConflictWritesNothing", testConflictWritesNothing},
		{"Delete", testDelete},
		{"CreateRace", testCreateRace},
		{"ConcurrentCAS", testConcurrentCAS},
		{"Copies", testCopies},
		{"Context", testContext},
		{"Closed", testClosed},
		{"Add", testAdd},
		{"ConcurrentAdd", testConcurrentAdd},
		{"ScanNth", testScanNth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func put(t *testing.T, s store.Store, key, value string) {
	t.Helper()
	if err := s.Txn(t.Context(), nil, []store.Op{store.Put(key, []byte(value))}); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

// want asserts key holds value at version; version 0 asserts it is absent.
func want(t *testing.T, s store.Store, key, value string, version int64) {
	t.Helper()
	kv, err := s.Get(t.Context(), key)
	if version == 0 {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(%q) = %q v%d, %v; want ErrNotFound", key, kv.Value, kv.Version, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if kv.Key != key || string(kv.Value) != value || kv.Version != version {
		t.Fatalf("Get(%q) = {%q %q v%d}; want {%q %q v%d}", key, kv.Key, kv.Value, kv.Version, key, value, version)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	if _, err := s.Get(t.Context(), "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) = %v; want ErrNotFound", err)
	}
	put(t, s, "a/b", "x")
	// Neither a prefix nor an extension of a stored key is that key.
	for _, k := range []string{"a", "a/", "a/bc"} {
		if _, err := s.Get(t.Context(), k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q) = %v; want ErrNotFound", k, err)
		}
	}
}

func testPutGet(t *testing.T, s store.Store) {
	tests := []struct {
		name, key string
		value     []byte
	}{
		{"plain", "k", []byte("v")},
		{"empty", "empty", []byte{}},
		{"nil", "nil", nil},
		{"binary", "bin", []byte{0, 1, 0xff, 0, 8}},
		{"large", "large", bytes.Repeat([]byte("0123456789abcdef"), 4096)},
		{"binary key", "k\x00\xff", []byte("v")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Txn(t.Context(), nil, []store.Op{store.Put(tc.key, tc.value)}); err != nil {
				t.Fatal(err)
			}
			kv, err := s.Get(t.Context(), tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if kv.Key != tc.key || !bytes.Equal(kv.Value, tc.value) || kv.Version != 1 {
				t.Fatalf("Get = {%q, %d bytes, v%d}; want {%q, %d bytes, v1}", kv.Key, len(kv.Value), kv.Version, tc.key, len(tc.value))
			}
		})
	}
}

func testVersions(t *testing.T, s store.Store) {
	const k = "ver"
	steps := []struct {
		op      store.Op
		version int64 // after op; 0 = absent
	}{
		{store.Put(k, []byte("1")), 1},
		{store.Put(k, []byte("2")), 2},
		{store.Put(k, []byte("3")), 3},
		{store.Delete(k), 0},
		{store.Put(k, []byte("4")), 1}, // recreated: counting starts over
		{store.Put(k, []byte("5")), 2},
	}
	for i, st := range steps {
		if err := s.Txn(t.Context(), nil, []store.Op{st.op}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want(t, s, k, string(st.op.Value), st.version)
	}
	// Another key's writes do not move this one's version.
	put(t, s, "other", "x")
	want(t, s, k, "5", 2)
}

func testList(t *testing.T, s store.Store) {
	keys := []string{
		"ap", "app", "app/1", "app/10", "app/2", "app/3", "app0", "apq", "b",
		"x\xff", "x\xff\xff", "y",
	}
	for _, k := range keys {
		put(t, s, k, "v:"+k)
	}
	put(t, s, "app/2", "v:app/2") // version 2, to see versions come back
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"app/", "", 0, []string{"app/1", "app/10", "app/2", "app/3"}},
		{"app/", "", 2, []string{"app/1", "app/10"}},
		{"app/", "", 4, []string{"app/1", "app/10", "app/2", "app/3"}},
		{"app/", "", 100, []string{"app/1", "app/10", "app/2", "app/3"}},
		{"app/", "", -1, []string{"app/1", "app/10", "app/2", "app/3"}},
		{"app/", "10", 0, []string{"app/10", "app/2", "app/3"}}, // after is inclusive
		{"app/", "11", 0, []string{"app/2", "app/3"}},
		{"app/", "2", 1, []string{"app/2"}},
		{"app/", "4", 0, nil},
		{"app", "", 0, []string{"app", "app/1", "app/10", "app/2", "app/3", "app0"}},
		{"ap", "q", 0, []string{"apq"}},
		{"app/3", "", 0, []string{"app/3"}},
		{"zzz", "", 0, nil},
		{"a", "zzz", 0, nil},
		{"x\xff", "", 0, []string{"x\xff", "x\xff\xff"}}, // no carry bug at 0xff
		{"x\xff\xff", "", 0, []string{"x\xff\xff"}},
		{"", "", 0, keys},
		{"", "app0", 3, []string{"app0", "apq", "b"}},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("prefix=%q,after=%q,limit=%d", tc.prefix, tc.after, tc.limit)
		t.Run(name, func(t *testing.T) {
			kvs, err := s.List(t.Context(), tc.prefix, tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range kvs {
				got = append(got, kv.Key)
				if string(kv.Value) != "v:"+kv.Key {
					t.Errorf("%q: value %q", kv.Key, kv.Value)
				}
				wantVer := int64(1)
				if kv.Key == "app/2" {
					wantVer = 2
				}
				if kv.Version != wantVer {
					t.Errorf("%q: version %d, want %d", kv.Key, kv.Version, wantVer)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("keys %q; want %q", got, tc.want)
			}
		})
	}
}

func testTxn(t *testing.T, s store.Store) {
	op := func(v string) []store.Op { return []store.Op{store.Put("k", []byte(v))} }
	steps := []struct {
		name    string
		cmps    []store.Cmp
		ops     []store.Op
		wantErr error
		value   string // of "k" afterwards
		version int64
	}{
		{"create if absent", []store.Cmp{{Key: "k"}}, op("a"), nil, "a", 1},
		{"create again", []store.Cmp{{Key: "k"}}, op("b"), store.ErrConflict, "a", 1},
		{"version match", []store.Cmp{{Key: "k", Version: 1}}, op("c"), nil, "c", 2},
		{"stale version", []store.Cmp{{Key: "k", Version: 1}}, op("d"), store.ErrConflict, "c", 2},
		{"future version", []store.Cmp{{Key: "k", Version: 3}}, op("d"), store.ErrConflict, "c", 2},
		{"other key absent", []store.Cmp{{Key: "k", Version: 2}, {Key: "none"}}, op("e"), nil, "e", 3},
		{"other key present", []store.Cmp{{Key: "k", Version: 3}, {Key: "k2", Version: 1}}, op("f"), nil, "f", 4},
		{"other key not absent", []store.Cmp{{Key: "k", Version: 4}, {Key: "k2"}}, op("x"), store.ErrConflict, "f", 4},
		{"compare only, holds", []store.Cmp{{Key: "k", Version: 4}}, nil, nil, "f", 4},
		{"compare only, fails", []store.Cmp{{Key: "k", Version: 1}}, nil, store.ErrConflict, "f", 4},
		{"no compare", nil, op("g"), nil, "g", 5},
		{"empty", nil, nil, nil, "g", 5},
	}
	put(t, s, "k2", "x")
	for _, st := range steps {
		if err := s.Txn(t.Context(), st.cmps, st.ops); !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: Txn = %v; want %v", st.name, err, st.wantErr)
		}
		want(t, s, "k", st.value, st.version)
	}
	want(t, s, "k2", "x", 1)
}

func testConflictWritesNothing(t *testing.T, s store.Store) {
	put(t, s, "a", "a1")
	put(t, s, "b", "b1")
	before, err := s.List(t.Context(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	ops := []store.Op{
		store.Put("a", []byte("a2")),
		store.Put("c", []byte("c1")),
		store.Delete("b"),
	}
	tests := []struct {
		name string
		cmps []store.Cmp
	}{
		{"last compare fails", []store.Cmp{{Key: "a", Version: 1}, {Key: "b", Version: 1}, {Key: "c", Version: 1}}},
		{"first compare fails", []store.Cmp{{Key: "a", Version: 2}, {Key: "b", Version: 1}}},
		{"absent expected", []store.Cmp{{Key: "b", Version: 0}}},
		{"present expected", []store.Cmp{{Key: "zz", Version: 1}}},
	}
	for _, tc := range tests {
		if err := s.Txn(t.Context(), tc.cmps, ops); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("%s: Txn = %v; want ErrConflict", tc.name, err)
		}
		after, err := s.List(t.Context(), "", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if !kvsEqual(before, after) {
			t.Fatalf("%s: store changed by a failed Txn:\nbefore %v\nafter  %v", tc.name, before, after)
		}
	}
	// The same ops with holding compares apply all together.
	if err := s.Txn(t.Context(), []store.Cmp{{Key: "a", Version: 1}, {Key: "c"}}, ops); err != nil {
		t.Fatal(err)
	}
	want(t, s, "a", "a2", 2)
	want(t, s, "b", "", 0)
	want(t, s, "c", "c1", 1)
}

func kvsEqual(a, b []store.KV) bool {
	return slices.EqualFunc(a, b, func(x, y store.KV) bool {
		return x.Key == y.Key && x.Version == y.Version && bytes.Equal(x.Value, y.Value)
	})
}

func testDelete(t *testing.T, s store.Store) {
	put(t, s, "d", "1")
	put(t, s, "keep", "1")
	if err := s.Txn(t.Context(), nil, []store.Op{store.Delete("d")}); err != nil {
		t.Fatal(err)
	}
	want(t, s, "d", "", 0)
	want(t, s, "keep", "1", 1)
	if kvs, err := s.List(t.Context(), "d", "", 0); err != nil || len(kvs) != 0 {
		t.Fatalf("List after delete = %v, %v; want none", kvs, err)
	}
	// Deleting an absent key is a no-op, not an error.
	if err := s.Txn(t.Context(), nil, []store.Op{store.Delete("never")}); err != nil {
		t.Fatalf("delete absent: %v", err)
	}
	// Delete guarded by version, in one Txn with a Put of another key.
	err := s.Txn(t.Context(), []store.Cmp{{Key: "keep", Version: 1}},
		[]store.Op{store.Delete("keep"), store.Put("moved", []byte("1"))})
	if err != nil {
		t.Fatal(err)
	}
	want(t, s, "keep", "", 0)
	want(t, s, "moved", "1", 1)
	// A deleted key compares as absent: create-if-absent works again.
	if err := s.Txn(t.Context(), []store.Cmp{{Key: "d"}}, []store.Op{store.Put("d", []byte("2"))}); err != nil {
		t.Fatalf("recreate: %v", err)
	}
	want(t, s, "d", "2", 1)
}

// testCreateRace: of many concurrent create-if-absent of one key, exactly
// one wins, also when a backend coalesces them into one commit.
func testCreateRace(t *testing.T, s store.Store) {
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Txn(t.Context(), []store.Cmp{{Key: "once"}},
				[]store.Op{store.Put("once", []byte(strconv.Itoa(i)))})
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("both %d and %d created the key", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the key")
	}
	want(t, s, "once", strconv.Itoa(winner), 1)
}

// testConcurrentCAS is the lost-update check: read-modify-write with a
// version compare and retry must count every increment exactly once.
func testConcurrentCAS(t *testing.T, s store.Store) {
	const workers, each = 32, 10
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := increment(t.Context(), s, "counter"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// One create and then one Put per increment: version == count.
	want(t, s, "counter", strconv.Itoa(workers*each), workers*each)
}

func increment(ctx context.Context, s store.Store, key string) error {
	for {
		n, ver := 0, int64(0)
		kv, err := s.Get(ctx, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			if n, err = strconv.Atoi(string(kv.Value)); err != nil {
				return err
			}
			ver = kv.Version
		}
		err = s.Txn(ctx, []store.Cmp{{Key: key, Version: ver}},
			[]store.Op{store.Put(key, []byte(strconv.Itoa(n+1)))})
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

func testCopies(t *testing.T, s store.Store) {
	in := []byte("original")
	if err := s.Txn(t.Context(), nil, []store.Op{store.Put("k", in)}); err != nil {
		t.Fatal(err)
	}
	copy(in, "CHANGED!") // the caller may reuse its buffer once Txn returned
	want(t, s, "k", "original", 1)

	kv, err := s.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(kv.Value, "CHANGED!")
	want(t, s, "k", "original", 1)

	kvs, err := s.List(t.Context(), "", "", 0)
	if err != nil || len(kvs) != 1 {
		t.Fatalf("List = %v, %v", kvs, err)
	}
	copy(kvs[0].Value, "CHANGED!")
	want(t, s, "k", "original", 1)

	// Values stay valid after later writes (no aliasing of backend memory).
	kv, _ = s.Get(t.Context(), "k")
	for i := range 64 {
		put(t, s, fmt.Sprintf("fill/%02d", i), string(bytes.Repeat([]byte{'x'}, 1024)))
	}
	put(t, s, "k", "rewritten")
	if string(kv.Value) != "original" {
		t.Fatalf("earlier Get value changed to %q", kv.Value)
	}
}

func testContext(t *testing.T, s store.Store) {
	put(t, s, "k", "v")
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithTimeout(t.Context(), -1)
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"canceled", canceled, context.Canceled},
		{"deadline exceeded", expired, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Get(tc.ctx, "k"); !errors.Is(err, tc.want) {
				t.Errorf("Get = %v; want %v", err, tc.want)
			}
			if _, err := s.List(tc.ctx, "", "", 0); !errors.Is(err, tc.want) {
				t.Errorf("List = %v; want %v", err, tc.want)
			}
			err := s.Txn(tc.ctx, nil, []store.Op{store.Put("k", []byte("new")), store.Put("n", nil)})
			if !errors.Is(err, tc.want) {
				t.Errorf("Txn = %v; want %v", err, tc.want)
			}
			// A Txn that failed on its context wrote nothing.
			want(t, s, "k", "v", 1)
			want(t, s, "n", "", 0)
		})
	}
}

func testClosed(t *testing.T, s store.Store) {
	put(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close = %v; want ErrClosed", err)
	}
	if _, err := s.List(ctx, "", "", 0); !errors.Is(err, store.ErrClosed) {
		t.Errorf("List after Close = %v; want ErrClosed", err)
	}
	if err := s.Txn(ctx, nil, []store.Op{store.Put("k", []byte("x"))}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Txn after Close = %v; want ErrClosed", err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close = %v; want nil or ErrClosed", err)
	}
}
