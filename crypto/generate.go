package crypto

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"runtime"
)

// SymmetricBitLengths are the key sizes GenerateKey accepts (512 is
// AES-256-XTS: two 256-bit keys).
var SymmetricBitLengths = []int{128, 192, 256, 512}

// GenerateKey returns bits/8 bytes from crypto/rand; bits must be one of
// SymmetricBitLengths.
func GenerateKey(bits int) ([]byte, error) {
	// Checked against constants, not the exported slice, which callers can modify.
	switch bits {
	case 128, 192, 256, 512:
	default:
		return nil, fmt.Errorf("crypto: unsupported symmetric key length %d bits (want 128, 192, 256 or 512)", bits)
	}
	k := make([]byte, bits/8)
	rand.Read(k)
	return k, nil
}

// PassphrasePolicy says how generated passphrases look.
type PassphrasePolicy struct {
	Length   int    // symbols per passphrase
	Alphabet string // distinct printable ASCII symbols
}

// DefaultPassphrasePolicy is 43 symbols of the 64-symbol URL-safe alphabet:
// 258 bits of entropy, enough that hosts need no slow key stretching.
var DefaultPassphrasePolicy = PassphrasePolicy{
	Length:   43,
	Alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
}

// Validate checks the alphabet has 2..256 distinct bytes, all printable ASCII
// other than space (0x21..0x7e), and the length is 8..1024. Space is excluded
// because tools and people trim it at the ends of passphrases.
func (p PassphrasePolicy) Validate() error {
	if p.Length < 8 || p.Length > 1024 {
		return fmt.Errorf("crypto: passphrase length %d outside 8..1024", p.Length)
	}
	if n := len(p.Alphabet); n < 2 || n > 256 {
		return fmt.Errorf("crypto: passphrase alphabet has %d symbols, want 2..256", n)
	}
	var seen [256]bool
	for i := 0; i < len(p.Alphabet); i++ {
		c := p.Alphabet[i]
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("crypto: passphrase alphabet byte %#02x at %d is not printable ASCII (0x21..0x7e)", c, i)
		}
		if seen[c] {
			return fmt.Errorf("crypto: passphrase alphabet repeats %q", c)
		}
		seen[c] = true
	}
	return nil
}

// EntropyBits is Length·log2(len(Alphabet)); meaningful for a valid policy.
func (p PassphrasePolicy) EntropyBits() float64 {
	if len(p.Alphabet) == 0 || p.Length <= 0 {
		return 0
	}
	return float64(p.Length) * math.Log2(float64(len(p.Alphabet)))
}

// GeneratePassphrase returns Length symbols drawn uniformly from Alphabet.
// Random bytes at or above the largest multiple of the alphabet size are
// rejected, so the modulo below carries no bias.
func GeneratePassphrase(p PassphrasePolicy) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	n := len(p.Alphabet)
	limit := 256 - 256%n
	out := make([]byte, p.Length)
	var buf [256]byte
	for i := 0; i < len(out); {
		// Enough for the rest on average; the loop tops up after rejections.
		chunk := buf[:min(len(buf), (len(out)-i)*256/limit+8)]
		rand.Read(chunk)
		for _, c := range chunk {
			if int(c) >= limit {
				continue
			}
			out[i] = p.Alphabet[int(c)%n]
			if i++; i == len(out) {
				break
			}
		}
	}
	Zero(buf[:])
	return out, nil
}

// HexPassphrase is the LUKS passphrase of a symmetric key: lowercase hex of
// every byte, two characters each.
func HexPassphrase(key []byte) []byte {
	out := make([]byte, hex.EncodedLen(len(key)))
	hex.Encode(out, key)
	return out
}

// LegacyHexPassphrase is the mangled form legacy volumes were formatted with:
// each byte as hex without its leading zero (0x04 → "4", 0x00 → "0").
func LegacyHexPassphrase(key []byte) []byte {
	const digits = "0123456789abcdef"
	n := 0
	for _, c := range key {
		n += 2
		if c < 0x10 {
			n--
		}
	}
	out := make([]byte, 0, n)
	for _, c := range key {
		if c >= 0x10 {
			out = append(out, digits[c>>4])
		}
		out = append(out, digits[c&0x0f])
	}
	return out
}

// Zero clears b; KeepAlive keeps the stores from being optimised away as dead.
func Zero(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}
