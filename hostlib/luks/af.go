package luks

import (
	"encoding/binary"
	"hash"
)

// afMerge recovers a key of keyLen bytes from its anti-forensic split
// (stripes blocks of keyLen bytes): every stripe but the last is XORed into
// an accumulator that is diffused after each step; the last one is XORed in
// plain.
func afMerge(split []byte, keyLen, stripes int, h func() hash.Hash) []byte {
	acc := make([]byte, keyLen)
	for i := 0; i < stripes-1; i++ {
		xorInto(acc, split[i*keyLen:(i+1)*keyLen])
		diffuse(acc, h)
	}
	xorInto(acc, split[(stripes-1)*keyLen:stripes*keyLen])
	return acc
}

// diffuse replaces each digest-sized chunk of b with H(be32(index) || chunk),
// truncated to the chunk's length (the last chunk may be short).
func diffuse(b []byte, newHash func() hash.Hash) {
	h := newHash()
	size := h.Size()
	var idx [4]byte
	var sum []byte
	for i, off := 0, 0; off < len(b); i, off = i+1, off+size {
		end := min(off+size, len(b))
		h.Reset()
		binary.BigEndian.PutUint32(idx[:], uint32(i))
		h.Write(idx[:])
		h.Write(b[off:end])
		sum = h.Sum(sum[:0])
		copy(b[off:end], sum)
	}
	clear(sum)
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
