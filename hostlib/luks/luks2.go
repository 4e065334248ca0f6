package luks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// LUKS2 binary header layout (big-endian), from the LUKS2 on-disk spec.
const (
	l2BinSize     = 4096
	l2HdrSize     = 8
	l2SeqID       = 16
	l2ChecksumAlg = 72
	l2UUID        = 168
	l2HdrOffset   = 256
	l2Csum        = 448
	l2CsumLen     = 64
)

// l2Offsets are where a LUKS2 header may start: the primary at 0, the
// secondary right after it, whose size is one of these powers of two.
var l2Offsets = []int64{0, 0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000}

type l2Area struct {
	hdr   []byte
	json  []byte
	seqID uint64
}

// readLUKS2 picks the valid header copy with the highest sequence id, as
// cryptsetup does, then parses its JSON metadata.
func readLUKS2(r io.ReaderAt) (*Header, error) {
	var best *l2Area
	var lastErr error = ErrNotLUKS
	for _, off := range l2Offsets {
		a, err := readL2Copy(r, off)
		if err != nil {
			if !errors.Is(err, ErrNotLUKS) {
				lastErr = err
			}
			continue
		}
		if best == nil || a.seqID > best.seqID {
			best = a
		}
	}
	if best == nil {
		return nil, lastErr
	}
	h, err := parseLUKS2JSON(best.json)
	if err != nil {
		return nil, err
	}
	h.UUID = cstr(best.hdr[l2UUID : l2UUID+40])
	return h, nil
}

func readL2Copy(r io.ReaderAt, off int64) (*l2Area, error) {
	bin := make([]byte, l2BinSize)
	if err := readFull(r, bin, off); err != nil {
		return nil, ErrNotLUKS
	}
	magic := luksMagic
	if off != 0 {
		magic = luks2Backup
	}
	if !bytes.HasPrefix(bin, magic) || binary.BigEndian.Uint16(bin[6:]) != 2 {
		return nil, ErrNotLUKS
	}
	be := binary.BigEndian
	size := be.Uint64(bin[l2HdrSize:])
	if size < 0x4000 || size > 0x400000 || size&(size-1) != 0 || be.Uint64(bin[l2HdrOffset:]) != uint64(off) {
		return nil, fmt.Errorf("%w: LUKS2 header at %d: size %d", ErrCorrupt, off, size)
	}
	all := make([]byte, size)
	if err := readFull(r, all, off); err != nil {
		return nil, fmt.Errorf("%w: LUKS2 header at %d truncated", ErrCorrupt, off)
	}
	if err := checkL2Checksum(all); err != nil {
		return nil, fmt.Errorf("LUKS2 header at %d: %w", off, err)
	}
	js := all[l2BinSize:]
	if i := bytes.IndexByte(js, 0); i >= 0 {
		js = js[:i]
	}
	return &l2Area{hdr: all[:l2BinSize], json: js, seqID: be.Uint64(bin[l2SeqID:])}, nil
}

// checkL2Checksum hashes the whole header area with the checksum field
// zeroed and compares it with that field.
func checkL2Checksum(all []byte) error {
	alg := cstr(all[l2ChecksumAlg : l2ChecksumAlg+32])
	newHash, err := hashFunc(alg)
	if err != nil {
		return err
	}
	want := append([]byte(nil), all[l2Csum:l2Csum+l2CsumLen]...)
	zeroed := append([]byte(nil), all...)
	clear(zeroed[l2Csum : l2Csum+l2CsumLen])
	h := newHash()
	h.Write(zeroed)
	got := h.Sum(nil)
	if !bytes.Equal(got, want[:len(got)]) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return nil
}
