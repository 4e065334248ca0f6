package crypto

import (
	"bytes"
	"crypto/rand"
	"math"
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	for _, bits := range SymmetricBitLengths {
		a, err := GenerateKey(bits)
		if err != nil || len(a)*8 != bits {
			t.Fatalf("%d bits: len %d err %v", bits, len(a), err)
		}
		b, _ := GenerateKey(bits)
		if bytes.Equal(a, b) || allZero(a) {
			t.Fatalf("%d bits: keys not random", bits)
		}
	}
	for _, bits := range []int{100, 0, -128, 64, 1024, 257} {
		if k, err := GenerateKey(bits); err == nil || k != nil {
			t.Errorf("GenerateKey(%d) accepted", bits)
		}
	}
}

func TestDefaultPassphrasePolicy(t *testing.T) {
	p := DefaultPassphrasePolicy
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(p.Alphabet) != 64 || p.Length != 43 || p.EntropyBits() < 256 {
		t.Fatalf("policy %d symbols × %d = %.1f bits", len(p.Alphabet), p.Length, p.EntropyBits())
	}
	a, err := GeneratePassphrase(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GeneratePassphrase(p)
	if len(a) != 43 || bytes.Equal(a, b) {
		t.Fatalf("passphrases %q %q", a, b)
	}
	for _, c := range a {
		if !strings.ContainsRune(p.Alphabet, rune(c)) {
			t.Fatalf("symbol %q outside the alphabet", c)
		}
	}
}

func TestPassphrasePolicyValidate(t *testing.T) {
	good := "abcdefgh"
	for name, p := range map[string]PassphrasePolicy{
		"short":       {Length: 7, Alphabet: good},
		"long":        {Length: 1025, Alphabet: good},
		"one symbol":  {Length: 16, Alphabet: "a"},
		"empty":       {Length: 16},
		"duplicate":   {Length: 16, Alphabet: "abca"},
		"space":       {Length: 16, Alphabet: "ab c"},
		"control":     {Length: 16, Alphabet: "ab\nc"},
		"nul":         {Length: 16, Alphabet: "ab\x00"},
		"non-ASCII":   {Length: 16, Alphabet: "abé"},
		"DEL":         {Length: 16, Alphabet: "ab\x7f"},
		"zero length": {Alphabet: good},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := GeneratePassphrase(p); err == nil {
			t.Errorf("%s: generated", name)
		}
	}
	for _, p := range []PassphrasePolicy{{8, "01"}, {1024, good}, {16, printableASCII()}} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
		if got, err := GeneratePassphrase(p); err != nil || len(got) != p.Length {
			t.Errorf("%+v: len %d err %v", p, len(got), err)
		}
	}
	if got := (PassphrasePolicy{Length: 10, Alphabet: "0123456789"}).EntropyBits(); math.Abs(got-33.219) > 0.001 {
		t.Errorf("entropy %f", got)
	}
}

func printableASCII() string {
	var b strings.Builder
	for c := byte(0x21); c <= 0x7e; c++ {
		b.WriteByte(c)
	}
	return b.String()
}

// chiSquare returns the statistic of counts against a uniform distribution
// and a bound that a uniform source exceeds with negligible probability
// (mean + 6 standard deviations of the chi-square distribution).
func chiSquare(counts map[byte]int, k int) (stat, bound float64) {
	total := 0
	for _, c := range counts {
		total += c
	}
	exp := float64(total) / float64(k)
	for _, c := range counts {
		d := float64(c) - exp
		stat += d * d / exp
	}
	stat += float64(k-len(counts)) * exp // symbols never drawn
	df := float64(k - 1)
	return stat, df + 6*math.Sqrt(2*df)
}

func TestPassphraseUniform(t *testing.T) {
	const symbols = 400_000
	for _, alphabet := range []string{"0123456789", DefaultPassphrasePolicy.Alphabet, printableASCII()} {
		p := PassphrasePolicy{Length: 1000, Alphabet: alphabet}
		counts := map[byte]int{}
		for range symbols / p.Length {
			pp, err := GeneratePassphrase(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range pp {
				counts[c]++
			}
		}
		if len(counts) != len(alphabet) {
			t.Fatalf("%d symbols: only %d seen", len(alphabet), len(counts))
		}
		stat, bound := chiSquare(counts, len(alphabet))
		t.Logf("%d symbols: chi² %.1f (bound %.1f)", len(alphabet), stat, bound)
		if stat > bound {
			t.Errorf("%d symbols: chi² %.1f > %.1f: not uniform", len(alphabet), stat, bound)
		}

		// The check has teeth: plain modulo sampling is caught.
		if 256%len(alphabet) == 0 {
			continue
		}
		biased := map[byte]int{}
		raw := make([]byte, symbols)
		rand.Read(raw)
		for _, c := range raw {
			biased[alphabet[int(c)%len(alphabet)]]++
		}
		if stat, bound := chiSquare(biased, len(alphabet)); stat <= bound {
			t.Errorf("%d symbols: modulo-biased sampling passed (chi² %.1f ≤ %.1f)", len(alphabet), stat, bound)
		}
	}
}

func TestHexPassphrases(t *testing.T) {
	for _, v := range []struct {
		key         []byte
		hex, legacy string
	}{
		{[]byte{0x04, 0xab, 0x00}, "04ab00", "4ab0"},
		{[]byte{0x00}, "00", "0"},
		{[]byte{0x10, 0x0f, 0xff, 0x01}, "100fff01", "10fff1"},
		{[]byte{}, "", ""},
		{nil, "", ""},
	} {
		if got := HexPassphrase(v.key); string(got) != v.hex {
			t.Errorf("HexPassphrase(%x) = %q, want %q", v.key, got, v.hex)
		}
		if got := LegacyHexPassphrase(v.key); string(got) != v.legacy {
			t.Errorf("LegacyHexPassphrase(%x) = %q, want %q", v.key, got, v.legacy)
		}
	}
	// Every byte value against the formatting rule it mirrors (Python's hex(b)[2:]).
	for b := range 256 {
		want := strings.TrimPrefix(string(HexPassphrase([]byte{byte(b)})), "0")
		if want == "" {
			want = "0"
		}
		if got := string(LegacyHexPassphrase([]byte{byte(b)})); got != want {
			t.Fatalf("legacy %#02x = %q, want %q", b, got, want)
		}
	}
}

func TestZero(t *testing.T) {
	b := []byte("secret material")
	Zero(b)
	if !allZero(b) {
		t.Fatalf("not cleared: %q", b)
	}
	Zero(nil)
}
