package luks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Header is a parsed LUKS header and the reader its keyslot areas live in.
type Header struct {
	Version       int       `json:"version"` // 1 or 2
	UUID          string    `json:"uuid"`
	Cipher        string    `json:"cipher"`         // data cipher, e.g. aes-xts-plain64
	KeyBytes      int       `json:"key_bytes"`      // volume key size
	PayloadOffset int64     `json:"payload_offset"` // bytes, from the LUKS header start
	Container     string    `json:"container"`      // raw or qcow2
	HeaderOffset  int64     `json:"header_offset"`  // LUKS header start in the file
	Keyslots      []Keyslot `json:"keyslots"`

	digests []digest
	r       io.ReaderAt
}

// Keyslot is one active keyslot.
type Keyslot struct {
	ID           int    `json:"id"`
	KeyBytes     int    `json:"key_bytes"` // size of the volume key it stores
	KDF          KDF    `json:"kdf"`
	AFStripes    int    `json:"af_stripes"`
	AFHash       string `json:"af_hash"`
	AreaOffset   int64  `json:"area_offset"` // bytes, from the LUKS header start
	AreaCipher   string `json:"area_cipher"` // e.g. aes
	AreaMode     string `json:"area_mode"`   // e.g. xts-plain64
	AreaKeyBytes int    `json:"area_key_bytes"`
}

// digest checks a candidate volume key: PBKDF2(hash, key, salt, iter) must
// equal value. LUKS1 has one for all slots; LUKS2 names the slots it covers.
type digest struct {
	keyslots   []int // nil: every slot
	hash       string
	iterations int
	salt       []byte
	value      []byte
}

var (
	luksMagic   = []byte{'L', 'U', 'K', 'S', 0xba, 0xbe}
	luks2Backup = []byte{'S', 'K', 'U', 'L', 0xba, 0xbe}
	qcow2Magic  = []byte{'Q', 'F', 'I', 0xfb}
)

// maxAFBytes bounds key material reads so a hostile header cannot make the
// verifier allocate without limit (real slots are 256000 bytes).
const maxAFBytes = 32 << 20

// Read parses the LUKS header at the start of r, or inside r when r is a
// qcow2 image with LUKS encryption.
func Read(r io.ReaderAt) (*Header, error) {
	head := make([]byte, 4096)
	if err := readFull(r, head, 0); err != nil {
		return nil, err
	}
	if bytes.HasPrefix(head, qcow2Magic) {
		off, err := qcow2LUKSOffset(r, head)
		if err != nil {
			return nil, err
		}
		h, err := readAt(io.NewSectionReader(r, off, 1<<62))
		if err != nil {
			return nil, err
		}
		h.Container, h.HeaderOffset = "qcow2", off
		return h, nil
	}
	return readAt(r)
}

func readAt(r io.ReaderAt) (*Header, error) {
	head := make([]byte, 4096)
	if err := readFull(r, head, 0); err != nil {
		return nil, err
	}
	var h *Header
	var err error
	switch {
	case bytes.HasPrefix(head, luksMagic) && head[6] == 0 && head[7] == 1:
		h, err = parseLUKS1(head)
	case bytes.HasPrefix(head, luksMagic) && head[6] == 0 && head[7] == 2:
		h, err = readLUKS2(r)
	default:
		// A damaged primary LUKS2 header may leave the secondary intact.
		h, err = readLUKS2(r)
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotLUKS) {
			err = ErrNotLUKS
		}
	}
	if err != nil {
		return nil, err
	}
	h.r, h.Container = r, "raw"
	return h, nil
}

// VerifyFile opens a file or block device, reads its header and checks the
// passphrase; it returns the header and the matching keyslot.
func VerifyFile(path string, pass []byte) (*Header, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, -1, err
	}
	defer f.Close()
	h, err := Read(f)
	if err != nil {
		return nil, -1, err
	}
	slot, err := h.Verify(pass)
	return h, slot, err
}

func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: short read at %d (%d of %d bytes)", ErrNotLUKS, off, n, len(b))
	}
	return err
}

// cstr returns a NUL-terminated field as a string.
func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
