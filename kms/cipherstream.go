package kms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"strings"

	"github.com/keywarden/keywarden/crypto"
)

// Streamed Encrypt and Decrypt (KMIP Init / Final Indicator) with AES.
// The decision (policy secret:use, state, usage mask, use dates) is taken
// once, when the stream opens, with the key as it is then; the parts that
// follow use the cipher set up at that moment. Output leaves as soon as
// the mode allows: CTR at once, CBC and ECB in whole blocks (decryption holds the last one
// back for the padding), GCM encryption at once with the tag at the end.
// GCM decryption releases nothing before the tag verifies: it keeps the
// ciphertext and answers at the final part.

// maxGCMStream keeps GCM's 32-bit block counter from wrapping (and the
// kept data bounded, whatever the caller's own bounds).
const maxGCMStream = 64 << 20

// CipherStream is one open streamed Encrypt or Decrypt. It is not safe
// for concurrent use: the caller serializes the parts.
type CipherStream struct {
	encrypt bool
	mode    string
	padded  bool
	bs      int
	block   cipher.Block
	ctr     cipher.Stream    // CTR, and GCM encryption's keystream
	cbc     cipher.BlockMode // CBC, or ECB (ecbMode)
	aead    cipher.AEAD      // GCM, 16-byte tag
	tagLen  int              // GCM tag length asked
	iv, aad []byte
	held    []byte // bytes not yet answered (CBC) or kept for the tag (GCM)
}

// OpenCipherStream decides and sets up a stream. res.IV is the IV the
// server chose when the request gave none (a decryption must give one).
func (s *Service) OpenCipherStream(ctx context.Context, who Identity, id string, p CryptoParams, encrypt bool) (cs *CipherStream, res *CryptoResult, err error) {
	action, use := "decrypt", UseDecrypt
	if encrypt {
		action, use = "encrypt", UseEncrypt
	}
	defer func() { s.record(ctx, who, action, id, err) }()
	sec, key, err := s.useKeyParams(ctx, who, id, use, &p)
	if err != nil {
		return nil, nil, err
	}
	defer crypto.Zero(key)
	if sec.UsageLimits != nil {
		return nil, nil, Invalid("secret %s has Usage Limits: it encrypts and decrypts one request at a time, each counted", id)
	}
	return newCipherStream(sec, key, p, encrypt)
}

// newCipherStream sets a stream up with an opened key.
func newCipherStream(sec *Secret, key []byte, p CryptoParams, encrypt bool) (cs *CipherStream, res *CryptoResult, err error) {
	if sec.Type != Symmetric {
		return nil, nil, Invalid("only AES keys encrypt in a stream; secret %s is %s", sec.ID, sec.Type)
	}
	if err := symmetricAlgorithm(sec, p); err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, Invalid("the key is not an AES key (%d bytes)", len(key))
	}
	cs = &CipherStream{encrypt: encrypt, mode: strings.ToLower(p.Mode), block: block, bs: aes.BlockSize}
	if cs.mode == "" {
		cs.mode = strings.ToLower(sec.Mode)
	}
	res = &CryptoResult{}
	cs.iv = append([]byte(nil), p.IV...)
	if cs.mode == "ecb" {
		cs.iv = nil // ECB has none
	} else if len(cs.iv) == 0 && encrypt {
		n := aes.BlockSize
		if cs.mode == "gcm" {
			n = 12
		}
		cs.iv = make([]byte, n)
		if _, err := rand.Read(cs.iv); err != nil {
			return nil, nil, internal("random IV", err)
		}
		res.IV = cs.iv
	}
	if len(cs.iv) == 0 && cs.mode != "ecb" {
		return nil, nil, Invalid("%s decryption needs the IV", cs.mode)
	}
	switch cs.mode {
	case "gcm":
		err = cs.openGCM(p)
	case "cbc":
		if len(cs.iv) != aes.BlockSize {
			return nil, nil, Invalid("a CBC IV is %d bytes", aes.BlockSize)
		}
		switch pad(p.Padding, "pkcs5") {
		case "pkcs5", "pkcs7":
			cs.padded = true
		case "none":
		default:
			return nil, nil, Invalid("CBC pads with pkcs5 or none, not %s", p.Padding)
		}
		if encrypt {
			cs.cbc = cipher.NewCBCEncrypter(block, cs.iv)
		} else {
			cs.cbc = cipher.NewCBCDecrypter(block, cs.iv)
		}
	case "ctr":
		if len(cs.iv) != aes.BlockSize {
			return nil, nil, Invalid("a CTR counter block is %d bytes", aes.BlockSize)
		}
		cs.ctr = cipher.NewCTR(block, cs.iv)
	case "ecb":
		switch pad(p.Padding, "none") {
		case "pkcs5", "pkcs7":
			cs.padded = true
		case "none":
		default:
			return nil, nil, Invalid("ECB pads with pkcs5 or none, not %s", p.Padding)
		}
		cs.cbc = ecbMode{block, encrypt}
	case "":
		return nil, nil, Invalid("no block cipher mode: the request or the key must name one of %v", BlockModes)
	default:
		return nil, nil, Invalid("block cipher mode %s is not served (%v are)", cs.mode, BlockModes)
	}
	if err != nil {
		return nil, nil, err
	}
	return cs, res, nil
}

// openGCM sets GCM up for any IV length: the keystream is gcmCounter's,
// and the tag is Go's GCM over the whole message at the end (16 bytes,
// truncated to the tag length asked: a shorter GCM tag is the full tag's
// leading bytes, NIST SP 800-38D §5.2.1.2).
func (cs *CipherStream) openGCM(p CryptoParams) error {
	tagLen := p.TagLen
	if tagLen == 0 {
		tagLen = 16
	}
	if err := gcmTagLen(tagLen); err != nil {
		return err
	}
	a, err := cipher.NewGCMWithNonceSize(cs.block, len(cs.iv))
	if err != nil {
		return Invalid("GCM: %v", err)
	}
	cs.aead, cs.tagLen, cs.aad = a, tagLen, append([]byte(nil), p.AAD...)
	ctr, err := newGCMCounter(cs.block, cs.iv)
	if err != nil {
		return err
	}
	if cs.encrypt {
		cs.ctr = ctr
	}
	return nil
}

// Update takes one part and returns the output it makes now (maybe none).
func (cs *CipherStream) Update(data []byte) ([]byte, error) {
	switch cs.mode {
	case "ctr":
		out := make([]byte, len(data))
		cs.ctr.XORKeyStream(out, data)
		return out, nil
	case "gcm":
		if len(cs.held)+len(data) > maxGCMStream {
			return nil, Invalid("a streamed GCM message is at most %d bytes", maxGCMStream)
		}
		cs.held = append(cs.held, data...)
		if !cs.encrypt {
			return nil, nil
		}
		out := make([]byte, len(data))
		cs.ctr.XORKeyStream(out, data)
		return out, nil
	}
	cs.held = append(cs.held, data...)
	n := len(cs.held) / cs.bs * cs.bs
	if !cs.encrypt && cs.padded && n == len(cs.held) && n > 0 {
		n -= cs.bs // the last block may be the padding: keep it for Final
	}
	out := make([]byte, n)
	cs.cbc.CryptBlocks(out, cs.held[:n])
	cs.held = append(cs.held[:0], cs.held[n:]...)
	return out, nil
}

// Final takes the last part (and, for GCM decryption, the tag) and
// returns the rest of the output; res.Tag is GCM encryption's tag. The
// stream is closed whatever the outcome.
func (cs *CipherStream) Final(data, tag []byte) (res *CryptoResult, err error) {
	defer cs.Close()
	res = &CryptoResult{}
	if cs.mode == "gcm" {
		return cs.finalGCM(data, tag, res)
	}
	if res.Data, err = cs.Update(data); err != nil || cs.mode == "ctr" {
		return res, err
	}
	if cs.encrypt {
		if !cs.padded {
			if len(cs.held) != 0 {
				return nil, Invalid("%s without padding needs whole %d-byte blocks", strings.ToUpper(cs.mode), cs.bs)
			}
			return res, nil
		}
		n := cs.bs - len(cs.held)
		last := append(cs.held, make([]byte, n)...)
		for i := len(last) - n; i < len(last); i++ {
			last[i] = byte(n)
		}
		out := make([]byte, cs.bs)
		cs.cbc.CryptBlocks(out, last)
		res.Data = append(res.Data, out...)
		return res, nil
	}
	if !cs.padded {
		if len(cs.held) != 0 {
			return nil, Invalid("a %s ciphertext is whole %d-byte blocks", strings.ToUpper(cs.mode), cs.bs)
		}
		return res, nil
	}
	if len(cs.held) != cs.bs {
		return nil, Invalid("a %s ciphertext is whole %d-byte blocks", strings.ToUpper(cs.mode), cs.bs)
	}
	out := make([]byte, cs.bs)
	cs.cbc.CryptBlocks(out, cs.held)
	n := int(out[cs.bs-1])
	bad := n == 0 || n > cs.bs
	for i := cs.bs - min(n, cs.bs); i < cs.bs && !bad; i++ {
		bad = int(out[i]) != n
	}
	if bad {
		return nil, CryptoFailure("bad padding")
	}
	res.Data = append(res.Data, out[:cs.bs-n]...)
	return res, nil
}

func (cs *CipherStream) finalGCM(data, tag []byte, res *CryptoResult) (*CryptoResult, error) {
	if cs.encrypt {
		out, err := cs.Update(data)
		if err != nil {
			return nil, err
		}
		// Go's GCM over the whole plaintext gives the tag; its ciphertext
		// is the keystream's, answered already.
		sealed := cs.aead.Seal(nil, cs.iv, cs.held, cs.aad)
		res.Data, res.Tag = out, sealed[len(cs.held):][:cs.tagLen]
		return res, nil
	}
	if _, err := cs.Update(data); err != nil {
		return nil, err
	}
	if len(tag) != cs.tagLen {
		return nil, Invalid("GCM decryption needs the %d-byte authentication tag", cs.tagLen)
	}
	// The plaintext is computed, its full tag recomputed and the given
	// (maybe truncated) tag compared in constant time; nothing leaves
	// unless it matches.
	ctr, err := newGCMCounter(cs.block, cs.iv)
	if err != nil {
		return nil, err
	}
	pt := make([]byte, len(cs.held))
	ctr.XORKeyStream(pt, cs.held)
	full := cs.aead.Seal(nil, cs.iv, pt, cs.aad)
	if subtle.ConstantTimeCompare(full[len(pt):][:cs.tagLen], tag) != 1 {
		crypto.Zero(pt)
		return nil, CryptoFailure("GCM authentication failed")
	}
	res.Data = pt
	return res, nil
}

// Held is the number of bytes the stream keeps, for the caller's bounds.
func (cs *CipherStream) Held() int { return len(cs.held) }

// Close zeroes what the stream keeps (plaintext, for GCM encryption).
func (cs *CipherStream) Close() {
	crypto.Zero(cs.held)
	cs.held = nil
}

// ecbMode runs ECB through the CBC path's whole-block handling.
type ecbMode struct {
	block   cipher.Block
	encrypt bool
}

func (e ecbMode) BlockSize() int { return e.block.BlockSize() }

func (e ecbMode) CryptBlocks(dst, src []byte) { ecbBlocks(e.block, dst, src, e.encrypt) }
