package kms

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestIndexPair: indexPair finds what bytes.Index finds, on haystacks and
// needles over a small alphabet (many near misses, hits at every
// alignment and at the very end).
func TestIndexPair(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alpha := []byte("ab\x00c")
	gen := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		return b
	}
	for range 20000 {
		s, needle := gen(r.IntN(80)), gen(2+r.IntN(6))
		if got, want := indexPair(s, needle), bytes.Index(s, needle); got != want {
			t.Fatalf("indexPair(%q, %q) = %d, want %d", s, needle, got, want)
		}
	}
}
