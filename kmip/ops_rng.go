package kmip

import (
	"crypto/rand"

	"github.com/gemalto/kmip-go/kmip14"
)

// Hash, RNG Retrieve and RNG Seed use no stored key: no policy row and no
// audit record, like Query.

// maxRandom bounds one RNG Retrieve.
const maxRandom = 1 << 16

func opHash(c *opCtx, p item) *opError {
	r, perr := cryptoOp(c, p, uint32(kmip14.OperationHash), false)
	if r == nil {
		return perr
	}
	if r.params.Hash == 0 {
		return missingData("Hash needs Cryptographic Parameters with a Hashing Algorithm")
	}
	h := r.params.Hash.New()
	h.Write(r.data)
	c.w.bytes(kmip14.TagData, h.Sum(nil))
	return nil
}

func opRNGRetrieve(c *opCtx, p item) *opError {
	m, ok := p.find(kmip14.TagDataLength)
	if !ok {
		return missingData("RNG Retrieve needs a Data Length")
	}
	n, perr := m.integer()
	if perr != nil {
		return perr
	}
	if n <= 0 || n > maxRandom {
		return invalidField("Data Length must be between 1 and %d", maxRandom)
	}
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return short)
	c.w.bytes(kmip14.TagData, b)
	return nil
}

// opRNGSeed accepts seed data and reports that none was used: the server
// draws from the operating system's generator, which a client cannot seed.
func opRNGSeed(c *opCtx, p item) *opError {
	m, ok := p.find(kmip14.TagData)
	if !ok {
		return missingData("RNG Seed needs Data")
	}
	if _, perr := m.bytes(); perr != nil {
		return perr
	}
	c.w.integer(kmip14.TagDataLength, 0)
	return nil
}
