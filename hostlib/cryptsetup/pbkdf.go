package cryptsetup

import (
	"fmt"
	"strconv"
)

// PBKDF chooses how a new keyslot stretches its passphrase. The zero value
// keeps cryptsetup's defaults (benchmarked: ~2 s of PBKDF2 for LUKS1,
// Argon2id for LUKS2), which is right for passphrases people type.
type PBKDF struct {
	Type       string // "", "pbkdf2", "argon2i", "argon2id"
	Hash       string // pbkdf2 hash; "" = default
	Iterations int    // pbkdf2 only: fixed count, skips the benchmark
	IterTimeMS int    // benchmark target; "" = default
	MemoryKiB  int    // argon2 only
	Parallel   int    // argon2 only
}

// FastPBKDF is for machine-generated secrets of 128 bits or more: they
// cannot be guessed, so stretching buys nothing and only slows every unlock.
// 1000 is the smallest iteration count cryptsetup accepts.
var FastPBKDF = PBKDF{Type: "pbkdf2", Hash: "sha256", Iterations: 1000}

// args renders the options. A fixed iteration count is only ever passed
// with pbkdf2: for argon2, cryptsetup reads it as the time cost, and a
// pbkdf2-sized count then spins for many minutes.
func (p PBKDF) args(luksType string) ([]string, error) {
	var a []string
	switch p.Type {
	case "":
	case "pbkdf2":
		a = append(a, "--pbkdf", "pbkdf2")
	case "argon2i", "argon2id":
		if luksType == LUKS1 {
			return nil, fmt.Errorf("%w: LUKS1 supports only pbkdf2, not %s", ErrInvalid, p.Type)
		}
		a = append(a, "--pbkdf", p.Type)
	default:
		return nil, fmt.Errorf("%w: unknown pbkdf %q", ErrInvalid, p.Type)
	}
	if p.Iterations > 0 {
		if p.Type != "pbkdf2" {
			return nil, fmt.Errorf("%w: a fixed iteration count needs pbkdf2 (argon2 would read it as time cost)", ErrInvalid)
		}
		a = append(a, "--pbkdf-force-iterations", strconv.Itoa(p.Iterations))
	}
	if p.Hash != "" {
		a = append(a, "--hash", p.Hash)
	}
	if p.IterTimeMS > 0 {
		a = append(a, "--iter-time", strconv.Itoa(p.IterTimeMS))
	}
	if p.MemoryKiB > 0 || p.Parallel > 0 {
		if p.Type != "argon2i" && p.Type != "argon2id" {
			return nil, fmt.Errorf("%w: memory and parallel cost apply to argon2 only", ErrInvalid)
		}
		if p.MemoryKiB > 0 {
			a = append(a, "--pbkdf-memory", strconv.Itoa(p.MemoryKiB))
		}
		if p.Parallel > 0 {
			a = append(a, "--pbkdf-parallel", strconv.Itoa(p.Parallel))
		}
	}
	return a, nil
}
