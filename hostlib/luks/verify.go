package luks

import (
	"crypto/subtle"
	"fmt"
	"slices"
)

// Verify checks pass against every active keyslot and returns the id of the
// first one that yields a volume key matching the header's digest.
// It returns ErrWrongPassphrase when every slot was checked and refused it,
// and ErrUnsupported (or ErrCorrupt) when some slot could not be checked.
func (h *Header) Verify(pass []byte) (int, error) {
	if len(h.Keyslots) == 0 {
		return -1, fmt.Errorf("%w: no active keyslot", ErrWrongPassphrase)
	}
	var unchecked error
	for _, s := range h.Keyslots {
		ok, err := h.trySlot(s, pass)
		if ok {
			return s.ID, nil
		}
		if err != nil && unchecked == nil {
			unchecked = fmt.Errorf("keyslot %d: %w", s.ID, err)
		}
	}
	if unchecked != nil {
		return -1, unchecked
	}
	return -1, ErrWrongPassphrase
}

func (h *Header) trySlot(s Keyslot, pass []byte) (bool, error) {
	if s.AFStripes < 1 || s.KeyBytes < 1 || s.KeyBytes*s.AFStripes > maxAFBytes ||
		s.AreaKeyBytes < 1 || s.AreaKeyBytes > 512 || s.AreaOffset < 0 {
		return false, fmt.Errorf("%w: keyslot geometry", ErrCorrupt)
	}
	afHash, err := hashFunc(s.AFHash)
	if err != nil {
		return false, err
	}
	area := make([]byte, (s.KeyBytes*s.AFStripes+sectorSize-1)/sectorSize*sectorSize)
	defer clear(area)
	if err := readFull(h.r, area, s.AreaOffset); err != nil {
		return false, fmt.Errorf("%w: key material: %v", ErrCorrupt, err)
	}
	key, err := s.KDF.derive(pass, s.AreaKeyBytes)
	if err != nil {
		return false, err
	}
	defer clear(key)
	if err := decryptArea(s.AreaCipher, s.AreaMode, key, area); err != nil {
		return false, err
	}
	vk := afMerge(area, s.KeyBytes, s.AFStripes, afHash)
	defer clear(vk)
	return h.matchDigest(s.ID, vk)
}

func (h *Header) matchDigest(slot int, vk []byte) (bool, error) {
	var checked bool
	for _, d := range h.digests {
		if d.keyslots != nil && !slices.Contains(d.keyslots, slot) {
			continue
		}
		hf, err := hashFunc(d.hash)
		if err != nil {
			return false, err
		}
		if d.iterations < 1 {
			return false, fmt.Errorf("%w: digest iterations %d", ErrCorrupt, d.iterations)
		}
		got, err := pbkdf2Key(vk, d.salt, d.iterations, len(d.value), hf)
		if err != nil {
			return false, err
		}
		checked = true
		if subtle.ConstantTimeCompare(got, d.value) == 1 {
			return true, nil
		}
	}
	if !checked {
		return false, fmt.Errorf("%w: no digest covers keyslot %d", ErrCorrupt, slot)
	}
	return false, nil
}
