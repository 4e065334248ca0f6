package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
)

// gcmCounter is GCM's keystream for a stream: AES of the counter block,
// whose low 32 bits count up modulo 2^32 (GCM's inc32, which a full-width
// CTR would not match once they wrap).
type gcmCounter struct {
	block cipher.Block
	ctr   [aes.BlockSize]byte
	ks    [aes.BlockSize]byte
	used  int // bytes of ks already spent
}

// newGCMCounter starts GCM's keystream for iv of any length: Go's GCM
// (16-byte tag, iv's nonce size) encrypting one zero block gives
// AES(inc32(J0)), and AES decryption of it gives the first counter block,
// so J0's GHASH for IVs other than 12 bytes is Go's, not ours.
func newGCMCounter(block cipher.Block, iv []byte) (*gcmCounter, error) {
	a, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return nil, Invalid("GCM: %v", err)
	}
	first := a.Seal(nil, iv, make([]byte, aes.BlockSize), nil)
	g := &gcmCounter{block: block, used: aes.BlockSize}
	block.Decrypt(g.ctr[:], first[:aes.BlockSize])
	return g, nil
}

func (g *gcmCounter) XORKeyStream(dst, src []byte) {
	for i := range src {
		if g.used == aes.BlockSize {
			g.block.Encrypt(g.ks[:], g.ctr[:])
			n := binary.BigEndian.Uint32(g.ctr[12:])
			binary.BigEndian.PutUint32(g.ctr[12:], n+1)
			g.used = 0
		}
		dst[i] = src[i] ^ g.ks[g.used]
		g.used++
	}
}
