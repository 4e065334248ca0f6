package luks

import (
	"encoding/binary"
	"fmt"
)

// LUKS1 on-disk layout (all integers big-endian), from the LUKS1 spec.
const (
	l1CipherName    = 8
	l1CipherMode    = 40
	l1HashSpec      = 72
	l1PayloadOffset = 104
	l1KeyBytes      = 108
	l1MKDigest      = 112
	l1MKDigestSalt  = 132
	l1MKDigestIter  = 164
	l1UUID          = 168
	l1Keyslots      = 208
	l1KeyslotSize   = 48
	l1NumKeyslots   = 8

	l1SlotActive = 0x00AC71F3
)

func parseLUKS1(b []byte) (*Header, error) {
	be := binary.BigEndian
	cipherName := cstr(b[l1CipherName:l1CipherMode])
	cipherMode := cstr(b[l1CipherMode:l1HashSpec])
	hashSpec := cstr(b[l1HashSpec:l1PayloadOffset])
	keyBytes := int(be.Uint32(b[l1KeyBytes:]))
	if keyBytes < 1 || keyBytes > 512 {
		return nil, fmt.Errorf("%w: LUKS1 key size %d bytes", ErrCorrupt, keyBytes)
	}
	h := &Header{
		Version:       1,
		UUID:          cstr(b[l1UUID : l1UUID+40]),
		Cipher:        cipherName + "-" + cipherMode,
		KeyBytes:      keyBytes,
		PayloadOffset: int64(be.Uint32(b[l1PayloadOffset:])) * sectorSize,
		digests: []digest{{
			hash:       hashSpec,
			iterations: int(be.Uint32(b[l1MKDigestIter:])),
			salt:       append([]byte(nil), b[l1MKDigestSalt:l1MKDigestSalt+32]...),
			value:      append([]byte(nil), b[l1MKDigest:l1MKDigest+20]...),
		}},
	}
	for i := range l1NumKeyslots {
		s := b[l1Keyslots+i*l1KeyslotSize:]
		if be.Uint32(s) != l1SlotActive {
			continue
		}
		h.Keyslots = append(h.Keyslots, Keyslot{
			ID:       i,
			KeyBytes: keyBytes,
			KDF: KDF{
				Type:       "pbkdf2",
				Hash:       hashSpec,
				Iterations: int(be.Uint32(s[4:])),
				Salt:       append([]byte(nil), s[8:40]...),
			},
			AreaOffset:   int64(be.Uint32(s[40:])) * sectorSize,
			AFStripes:    int(be.Uint32(s[44:])),
			AFHash:       hashSpec,
			AreaCipher:   cipherName,
			AreaMode:     cipherMode,
			AreaKeyBytes: keyBytes,
		})
	}
	return h, nil
}
