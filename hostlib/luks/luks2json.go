package luks

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// JSON metadata of a LUKS2 header; sizes and offsets are decimal strings
// because JSON numbers cannot hold every uint64.
type l2JSON struct {
	Keyslots map[string]struct {
		Type    string `json:"type"`
		KeySize int    `json:"key_size"`
		AF      struct {
			Type    string `json:"type"`
			Stripes int    `json:"stripes"`
			Hash    string `json:"hash"`
		} `json:"af"`
		Area struct {
			Type       string `json:"type"`
			Offset     string `json:"offset"`
			Size       string `json:"size"`
			Encryption string `json:"encryption"`
			KeySize    int    `json:"key_size"`
		} `json:"area"`
		KDF struct {
			Type       string `json:"type"`
			Hash       string `json:"hash"`
			Iterations int    `json:"iterations"`
			Time       int    `json:"time"`
			Memory     int    `json:"memory"`
			CPUs       int    `json:"cpus"`
			Salt       string `json:"salt"`
		} `json:"kdf"`
	} `json:"keyslots"`
	Segments map[string]struct {
		Type       string `json:"type"`
		Offset     string `json:"offset"`
		Encryption string `json:"encryption"`
	} `json:"segments"`
	Digests map[string]struct {
		Type       string   `json:"type"`
		Keyslots   []string `json:"keyslots"`
		Hash       string   `json:"hash"`
		Iterations int      `json:"iterations"`
		Salt       string   `json:"salt"`
		Digest     string   `json:"digest"`
	} `json:"digests"`
}

func parseLUKS2JSON(js []byte) (*Header, error) {
	var m l2JSON
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("%w: LUKS2 JSON: %v", ErrCorrupt, err)
	}
	h := &Header{Version: 2}
	if seg, ok := m.Segments["0"]; ok && seg.Type == "crypt" {
		h.Cipher = seg.Encryption
		h.PayloadOffset, _ = strconv.ParseInt(seg.Offset, 10, 64)
	}
	for id, s := range m.Keyslots {
		if s.Type != "luks2" {
			continue // e.g. reencrypt slots hold no volume key for unlocking
		}
		n, err := strconv.Atoi(id)
		if err != nil {
			return nil, fmt.Errorf("%w: keyslot id %q", ErrCorrupt, id)
		}
		off, err := strconv.ParseInt(s.Area.Offset, 10, 64)
		if err != nil || off < 0 {
			return nil, fmt.Errorf("%w: keyslot %s area offset %q", ErrCorrupt, id, s.Area.Offset)
		}
		salt, err := base64.StdEncoding.DecodeString(s.KDF.Salt)
		if err != nil {
			return nil, fmt.Errorf("%w: keyslot %s salt", ErrCorrupt, id)
		}
		if s.AF.Type != "luks1" || s.Area.Type != "raw" {
			return nil, fmt.Errorf("%w: keyslot %s af %q area %q", ErrUnsupported, id, s.AF.Type, s.Area.Type)
		}
		cipherName, mode, _ := strings.Cut(s.Area.Encryption, "-")
		h.Keyslots = append(h.Keyslots, Keyslot{
			ID:       n,
			KeyBytes: s.KeySize,
			KDF: KDF{Type: s.KDF.Type, Hash: s.KDF.Hash, Iterations: s.KDF.Iterations,
				Time: s.KDF.Time, MemoryKiB: s.KDF.Memory, Threads: s.KDF.CPUs, Salt: salt},
			AFStripes:    s.AF.Stripes,
			AFHash:       s.AF.Hash,
			AreaOffset:   off,
			AreaCipher:   cipherName,
			AreaMode:     mode,
			AreaKeyBytes: s.Area.KeySize,
		})
		h.KeyBytes = max(h.KeyBytes, s.KeySize)
	}
	sort.Slice(h.Keyslots, func(i, j int) bool { return h.Keyslots[i].ID < h.Keyslots[j].ID })
	for id, d := range m.Digests {
		if d.Type != "pbkdf2" {
			return nil, fmt.Errorf("%w: digest %s type %q", ErrUnsupported, id, d.Type)
		}
		salt, err1 := base64.StdEncoding.DecodeString(d.Salt)
		val, err2 := base64.StdEncoding.DecodeString(d.Digest)
		if err1 != nil || err2 != nil || len(val) == 0 {
			return nil, fmt.Errorf("%w: digest %s encoding", ErrCorrupt, id)
		}
		dg := digest{keyslots: []int{}, hash: d.Hash, iterations: d.Iterations, salt: salt, value: val}
		for _, k := range d.Keyslots {
			if n, err := strconv.Atoi(k); err == nil {
				dg.keyslots = append(dg.keyslots, n)
			}
		}
		h.digests = append(h.digests, dg)
	}
	return h, nil
}
