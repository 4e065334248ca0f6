package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/crypto/xts"
)

const sectorSize = 512

// decryptArea decrypts keyslot key material in place. Keyslot areas are
// always processed in 512-byte sectors numbered from zero, whatever the data
// segment's sector size.
func decryptArea(cipherName, mode string, key, data []byte) error {
	if len(data)%sectorSize != 0 {
		return fmt.Errorf("%w: key material not sector aligned", ErrCorrupt)
	}
	if !strings.EqualFold(cipherName, "aes") {
		return fmt.Errorf("%w: cipher %q", ErrUnsupported, cipherName)
	}
	chain, ivgen, _ := strings.Cut(strings.ToLower(mode), "-")
	switch chain {
	case "xts":
		return decryptXTS(ivgen, key, data)
	case "cbc":
		return decryptCBC(ivgen, key, data)
	}
	return fmt.Errorf("%w: cipher mode %q", ErrUnsupported, mode)
}

func decryptXTS(ivgen string, key, data []byte) error {
	// x/crypto/xts takes the sector number as a little-endian tweak, which is
	// exactly plain64 (and plain below 2^32 sectors, always true for a
	// keyslot). QEMU writes "plain64:sha256" for Nova's ivgen-hash-alg; the
	// hash does not change a plain64 IV.
	gen, _, _ := strings.Cut(ivgen, ":")
	if gen != "plain64" && gen != "plain" {
		return fmt.Errorf("%w: xts IV generator %q", ErrUnsupported, ivgen)
	}
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		return fmt.Errorf("%w: xts key of %d bytes", ErrUnsupported, len(key))
	}
	for s := 0; s*sectorSize < len(data); s++ {
		sec := data[s*sectorSize : (s+1)*sectorSize]
		c.Decrypt(sec, sec, uint64(s))
	}
	return nil
}

func decryptCBC(ivgen string, key, data []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("%w: aes key of %d bytes", ErrUnsupported, len(key))
	}
	iv, err := newIVGen(ivgen, key)
	if err != nil {
		return err
	}
	buf := make([]byte, aes.BlockSize)
	for s := 0; s*sectorSize < len(data); s++ {
		sec := data[s*sectorSize : (s+1)*sectorSize]
		iv(buf, uint64(s))
		cipher.NewCBCDecrypter(block, buf).CryptBlocks(sec, sec)
	}
	return nil
}

// newIVGen returns a function filling a 16-byte IV for a sector number.
func newIVGen(spec string, key []byte) (func(iv []byte, sector uint64), error) {
	gen, hashName, _ := strings.Cut(spec, ":")
	switch gen {
	case "plain", "plain64":
		return func(iv []byte, sector uint64) {
			clear(iv)
			if gen == "plain" {
				sector &= 0xffffffff
			}
			binary.LittleEndian.PutUint64(iv, sector)
		}, nil
	case "essiv":
		h, err := hashFunc(hashName)
		if err != nil {
			return nil, err
		}
		hh := h()
		hh.Write(key)
		salt := hh.Sum(nil)
		defer clear(salt)
		essiv, err := aes.NewCipher(salt)
		if err != nil {
			return nil, fmt.Errorf("%w: essiv hash %q", ErrUnsupported, hashName)
		}
		return func(iv []byte, sector uint64) {
			clear(iv)
			binary.LittleEndian.PutUint64(iv, sector)
			essiv.Encrypt(iv, iv)
		}, nil
	}
	return nil, fmt.Errorf("%w: IV generator %q", ErrUnsupported, spec)
}
