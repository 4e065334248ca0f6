package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	_ "crypto/sha1" // the hashes of signatures, OAEP and HMAC
	_ "crypto/sha256"
	_ "crypto/sha512"
	"strings"
)

// Symmetric encryption: AES in GCM, CBC (PKCS#5 padding or none), CTR and
// ECB (no padding unless PKCS#5 is named; the KMIP Basic Cryptographic
// profile's mandatory test cases use it, e.g. to wrap keys by hand — it
// leaks equal blocks, so nothing here picks it by default).
// 3DES and other legacy ciphers are refused by design.

// BlockModes are the block cipher modes Encrypt and Decrypt serve.
var BlockModes = []string{"gcm", "cbc", "ctr", "ecb"}

// symmetricAlgorithm checks that an AES key does the work.
func symmetricAlgorithm(sec *Secret, p CryptoParams) error {
	alg := normAlgorithm(sec.Algorithm)
	if a := normAlgorithm(p.Algorithm); a != "" && a != alg && alg != "" {
		return Invalid("the request names %s, the key is %s", p.Algorithm, sec.Algorithm)
	}
	switch alg {
	case "aes", "":
		return nil
	case "3des", "des", "tripledes":
		return Invalid("%s is refused by design: only AES keys encrypt here", sec.Algorithm)
	}
	return Invalid("a %s key does not encrypt here: only AES keys do", sec.Algorithm)
}

func symmetric(sec *Secret, key []byte, p CryptoParams, data []byte, encrypt bool) (*CryptoResult, error) {
	if err := symmetricAlgorithm(sec, p); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, Invalid("the key is not an AES key (%d bytes)", len(key))
	}
	mode := strings.ToLower(p.Mode)
	if mode == "" {
		mode = strings.ToLower(sec.Mode)
	}
	res := &CryptoResult{}
	if mode == "ecb" {
		padded := pad(p.Padding, "none")
		if padded != "pkcs5" && padded != "pkcs7" && padded != "none" {
			return nil, Invalid("ECB pads with pkcs5 or none, not %s", p.Padding)
		}
		return blockwise(block, data, encrypt, padded != "none", res, "ECB", ecbBlocks)
	}
	iv := p.IV
	if len(iv) == 0 && encrypt {
		n := aes.BlockSize
		if mode == "gcm" {
			n = 12
		}
		iv = make([]byte, n)
		if _, err := rand.Read(iv); err != nil {
			return nil, internal("random IV", err)
		}
		res.IV = iv
	}
	if len(iv) == 0 {
		return nil, InvalidField("Decrypt", "IV", "%s decryption needs the IV", mode)
	}
	switch mode {
	case "gcm":
		return gcm(block, p, iv, data, encrypt, res)
	case "cbc":
		if len(iv) != aes.BlockSize {
			return nil, Invalid("a CBC IV is %d bytes", aes.BlockSize)
		}
		padded := pad(p.Padding, "pkcs5")
		if padded != "pkcs5" && padded != "pkcs7" && padded != "none" {
			return nil, Invalid("CBC pads with pkcs5 or none, not %s", p.Padding)
		}
		return cbc(block, iv, data, encrypt, padded != "none", res)
	case "ctr":
		if len(iv) != aes.BlockSize {
			return nil, Invalid("a CTR counter block is %d bytes", aes.BlockSize)
		}
		res.Data = make([]byte, len(data))
		cipher.NewCTR(block, iv).XORKeyStream(res.Data, data)
		return res, nil
	case "":
		return nil, Invalid("no block cipher mode: the request or the key must name one of %v", BlockModes)
	}
	return nil, Invalid("block cipher mode %s is not served (%v are)", mode, BlockModes)
}

func gcm(block cipher.Block, p CryptoParams, iv, data []byte, encrypt bool, res *CryptoResult) (*CryptoResult, error) {
	tagLen := p.TagLen
	if tagLen == 0 {
		tagLen = 16
		if !encrypt && len(p.Tag) > 0 {
			tagLen = len(p.Tag)
		}
	}
	if err := gcmTagLen(tagLen); err != nil {
		return nil, err
	}
	if len(iv) < 8 || len(iv) > 128 {
		return nil, Invalid("a GCM IV of %d bytes is not served (12 is the norm)", len(iv))
	}
	var a cipher.AEAD
	var err error
	if len(iv) == 12 {
		a, err = cipher.NewGCMWithTagSize(block, tagLen)
	} else if tagLen == 16 {
		a, err = cipher.NewGCMWithNonceSize(block, len(iv))
	} else {
		return nil, Invalid("a GCM IV other than 12 bytes takes a 16-byte tag")
	}
	if err != nil {
		return nil, Invalid("GCM: %v", err)
	}
	if encrypt {
		out := a.Seal(nil, iv, data, p.AAD)
		res.Data, res.Tag = out[:len(data)], out[len(data):]
		return res, nil
	}
	if len(p.Tag) != tagLen {
		return nil, Invalid("GCM decryption needs the %d-byte authentication tag", tagLen)
	}
	ct := make([]byte, 0, len(data)+len(p.Tag))
	ct = append(append(ct, data...), p.Tag...)
	out, err := a.Open(ct[:0], iv, ct, p.AAD)
	if err != nil {
		return nil, CryptoFailure("GCM authentication failed")
	}
	res.Data = out
	return res, nil
}

func cbc(block cipher.Block, iv, data []byte, encrypt, padded bool, res *CryptoResult) (*CryptoResult, error) {
	return blockwise(block, data, encrypt, padded, res, "CBC", func(_ cipher.Block, dst, src []byte, encrypt bool) {
		if encrypt {
			cipher.NewCBCEncrypter(block, iv).CryptBlocks(dst, src)
		} else {
			cipher.NewCBCDecrypter(block, iv).CryptBlocks(dst, src)
		}
	})
}

// ecbBlocks runs the block cipher on each block by itself.
func ecbBlocks(block cipher.Block, dst, src []byte, encrypt bool) {
	bs := block.BlockSize()
	for i := 0; i+bs <= len(src); i += bs {
		if encrypt {
			block.Encrypt(dst[i:i+bs], src[i:i+bs])
		} else {
			block.Decrypt(dst[i:i+bs], src[i:i+bs])
		}
	}
}

// blockwise pads (PKCS#5) and runs a whole-block mode, or checks and
// removes the padding after it.
func blockwise(block cipher.Block, data []byte, encrypt, padded bool, res *CryptoResult, name string,
	run func(block cipher.Block, dst, src []byte, encrypt bool)) (*CryptoResult, error) {
	bs := block.BlockSize()
	if encrypt {
		in := data
		if padded {
			n := bs - len(data)%bs
			in = make([]byte, len(data)+n)
			copy(in, data)
			for i := len(data); i < len(in); i++ {
				in[i] = byte(n)
			}
		}
		if len(in)%bs != 0 {
			return nil, Invalid("%s without padding needs whole %d-byte blocks", name, bs)
		}
		res.Data = make([]byte, len(in))
		run(block, res.Data, in, true)
		return res, nil
	}
	if len(data) == 0 || len(data)%bs != 0 {
		return nil, Invalid("a %s ciphertext is whole %d-byte blocks", name, bs)
	}
	out := make([]byte, len(data))
	run(block, out, data, false)
	if padded {
		n := int(out[len(out)-1])
		if n == 0 || n > bs {
			return nil, CryptoFailure("bad padding")
		}
		for _, b := range out[len(out)-n:] {
			if int(b) != n {
				return nil, CryptoFailure("bad padding")
			}
		}
		out = out[:len(out)-n]
	}
	res.Data = out
	return res, nil
}

// gcmTagLen checks a GCM tag length: 12 to 16 bytes are served. 4 and 8
// are GCM's (NIST SP 800-38D §5.2.1.2) but too short here: Invalid. Any
// other length is no GCM tag at all: an error with Field "TagLength",
// which KMIP answers General Failure as test case CS-BC-M-GCM-1 expects.
func gcmTagLen(n int) error {
	switch {
	case n >= 12 && n <= 16:
		return nil
	case n == 4 || n == 8:
		return Invalid("a GCM tag is 12 to 16 bytes here, not %d", n)
	}
	return InvalidField("Encrypt", "TagLength", "%d bytes is not a GCM tag length", n)
}
