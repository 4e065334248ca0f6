package kms

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFinder: a finder finds what bytes.Index finds, on haystacks and
// needles over a small alphabet (many near misses, hits at every
// alignment and at the very end), with samples that make every byte rare
// or frequent.
func TestFinder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alpha := []byte("ab\x00c")
	gen := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		return b
	}
	for range 40000 {
		s, needle := gen(r.IntN(80)), gen(1+r.IntN(7))
		sample := s
		switch r.IntN(3) {
		case 0: // every byte frequent: the pair
			sample = gen(2000 + r.IntN(2000))
		case 1: // one byte only: the others rare
			sample = bytes.Repeat(alpha[r.IntN(len(alpha)):][:1], 3000)
		}
		f := newFinder(sample, needle)
		f.needle = needle
		if got, want := f.index(s), bytes.Index(s, needle); got != want {
			t.Fatalf("finder%+v.index(%q) = %d, want %d", f, s, got, want)
		}
	}
}

// TestNameColumnApply drives one column through thousands of inserts (in
// and out of order), renames (longer and shorter) and deletes (enough to
// compact, twice), checking after each round its entries against a plain
// map and its sweeps against containsFold on every live name.
func TestNameColumnApply(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	c := newNameColumn("p")
	c.reserve(16)
	c.state = columnReady
	defer c.release()
	type entry struct {
		name string
		alg  string
	}
	model := map[string]entry{}
	var keys []string
	suffix := func(n uint64) string {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), r.Uint64()&0xffffffffffff)
		return fmt.Sprintf("%016x/%s", n, id)
	}
	names := []string{"vol-", "Ünï", "STRAßE", "a\x00b", "", "x"}
	for round := range 6 {
		for i := range 1500 {
			var s string
			switch op := r.IntN(10); {
			case op < 5 || len(keys) == 0: // insert, mostly at the end
				at := uint64(round*100000 + i*10)
				if op == 0 {
					at = r.Uint64N(at + 1)
				}
				s = suffix(at)
				keys = append(keys, s)
				model[s] = entry{names[r.IntN(len(names))] + fmt.Sprint(r.IntN(1000)), []string{"aes", "des"}[r.IntN(2)]}
			case op < 7: // rename
				s = keys[r.IntN(len(keys))]
				if _, ok := model[s]; ok {
					model[s] = entry{strings.Repeat("y", r.IntN(30)), "aes"}
				}
			default: // delete
				s = keys[r.IntN(len(keys))]
				delete(model, s)
			}
			e, ok := model[s]
			var v []byte
			if ok {
				v = encodeSummary(&Secret{Name: e.name, Algorithm: e.alg, Type: Symmetric, State: Active})
			}
			if err := c.apply(s, v, ok); err != nil {
				t.Fatal(err)
			}
		}
		live := map[string]string{}
		for i, v := range c.vals {
			if v != deadVal {
				live[c.suffixAt(i)] = string(c.names[c.off[i] : c.off[i+1]-1])
			}
			if i > 0 && c.compareAt(i-1, c.created[i], c.ids[i]) >= 0 {
				t.Fatalf("round %d: entries %d and %d out of order", round, i-1, i)
			}
		}
		if len(live) != len(model) {
			t.Fatalf("round %d: %d live entries, want %d", round, len(live), len(model))
		}
		for s, e := range model {
			if live[s] != string(lowerName(nil, []byte(e.name))) {
				t.Fatalf("round %d: %s is %q, want %q", round, s, live[s], e.name)
			}
		}
		for _, needle := range []string{"VOL-1", "ünï", "a\x00", "\x00", "y", "yyyyy", "ß", "1"} {
			var q ListQuery
			q.Name, q.Algorithm = needle, "aes"
			ok := make([]bool, len(c.combos))
			for i, k := range c.combos {
				ok[i] = q.comboMatches(k)
			}
			want := 0
			for _, e := range model {
				if containsFold(e.name, needle) && e.alg == "aes" {
					want++
				}
			}
			if got := len(c.sweep(lowerName(nil, []byte(needle)), ok, nil)); got != want {
				t.Fatalf("round %d: %q matches %d, want %d", round, needle, got, want)
			}
		}
	}
	if len(c.maps) == 0 {
		t.Fatal("no mapped arrays")
	}
}

// BenchmarkNameColumnSweep: one sweep of a column of a million names as
// bench scale's ("vol-%09d", all aes), for a name= with one match and one
// with 100,000; beside it the summary scan the column replaces does the
// same match on each summary's bytes.
func BenchmarkNameColumnSweep(b *testing.B) {
	const n = 1_000_000
	c := newNameColumn("p")
	c.reserve(n)
	c.state = columnReady
	defer c.release()
	var scratch []byte
	sums := make([][]byte, n)
	for i := range n {
		sums[i] = encodeSummary(&Secret{Name: fmt.Sprintf("vol-%09d", i), Algorithm: "aes", Mode: "xts", Type: Symmetric, BitLength: 256, State: Active})
		var err error
		suffix := fmt.Sprintf("%016x/%08x-0000-4000-8000-000000000000", i, i)
		if scratch, err = c.appendEntry([]byte(suffix), sums[i], scratch); err != nil {
			b.Fatal(err)
		}
	}
	ok := []bool{true}
	for _, needle := range []string{fmt.Sprintf("vol-%09d", n/3), "vol-0001"} {
		b.Run("column/"+needle, func(b *testing.B) {
			var m []int32
			cpu0 := cpuNanos()
			for b.Loop() {
				m = c.sweep([]byte(needle), ok, m[:0])
			}
			b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(m)), "matches")
		})
		b.Run("bytes.Index/"+needle, func(b *testing.B) { // the sweep's search without the finder
			cpu0 := cpuNanos()
			for b.Loop() {
				for pos := 0; ; {
					j := bytes.Index(c.names[pos:], []byte(needle))
					if j < 0 {
						break
					}
					pos += j + 1
				}
			}
			b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N), "cpu-ns/op")
		})
		b.Run("summaries/"+needle, func(b *testing.B) {
			q := ListQuery{Name: needle}
			for b.Loop() {
				for _, v := range sums {
					q.rawMatch(nil, v, time.Time{})
				}
			}
		})
	}
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
