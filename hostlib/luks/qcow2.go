package luks

import (
	"encoding/binary"
	"fmt"
	"io"
)

// qcow2 header fields used to find QEMU's LUKS header (qcow2 spec, big-endian).
const (
	qcowVersion      = 4
	qcowClusterBits  = 20
	qcowCryptMethod  = 32
	qcowHeaderLength = 100
	qcowV2HeaderLen  = 72
	qcowCryptLUKS    = 2
	qcowExtFDE       = 0x0537be77 // "full disk encryption header pointer"
)

// qcow2LUKSOffset walks the qcow2 header extensions to the one pointing at
// the LUKS header; keyslot offsets in that header are relative to it.
func qcow2LUKSOffset(r io.ReaderAt, head []byte) (int64, error) {
	be := binary.BigEndian
	if m := be.Uint32(head[qcowCryptMethod:]); m != qcowCryptLUKS {
		return 0, fmt.Errorf("%w: qcow2 image with encryption method %d", ErrNotLUKS, m)
	}
	hdrLen := uint32(qcowV2HeaderLen)
	if be.Uint32(head[qcowVersion:]) >= 3 {
		hdrLen = be.Uint32(head[qcowHeaderLength:])
	}
	clusterBits := be.Uint32(head[qcowClusterBits:])
	if clusterBits < 9 || clusterBits > 21 || hdrLen < qcowV2HeaderLen {
		return 0, fmt.Errorf("%w: qcow2 header", ErrCorrupt)
	}
	// Extensions live in the first cluster, after the fixed header.
	first := make([]byte, min(1<<clusterBits, 64<<10))
	if err := readFull(r, first, 0); err != nil {
		return 0, fmt.Errorf("%w: qcow2 first cluster", ErrCorrupt)
	}
	for off := int(hdrLen); off+8 <= len(first); {
		typ, n := be.Uint32(first[off:]), int(be.Uint32(first[off+4:]))
		if typ == 0 {
			break
		}
		data := off + 8
		if data+n > len(first) {
			break
		}
		if typ == qcowExtFDE && n >= 16 {
			return int64(be.Uint64(first[data:])), nil
		}
		off = data + (n+7)/8*8
	}
	return 0, fmt.Errorf("%w: qcow2 LUKS header pointer missing", ErrCorrupt)
}
