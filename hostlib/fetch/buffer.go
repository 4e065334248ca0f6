package fetch

import (
	"errors"
	"fmt"
	"io"

	"github.com/keywarden/keywarden/crypto"
)

// errTooLarge is permanent: a retry would get the same answer.
var errTooLarge = errors.New("payload too large for a disk secret")

// readSecret reads a payload into one buffer of exactly its size. With a
// known length it reads straight into that buffer; otherwise into a
// bounded scratch buffer that is copied out and zeroed, so no stray copy
// of the secret is left for the garbage collector.
func readSecret(r io.Reader, length int64) ([]byte, error) {
	if length > maxPayload {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", errTooLarge, length, maxPayload)
	}
	if length >= 0 {
		out := make([]byte, length)
		if _, err := io.ReadFull(r, out); err != nil {
			crypto.Zero(out)
			return nil, err
		}
		return out, nil
	}
	scratch := make([]byte, maxPayload+1)
	defer crypto.Zero(scratch)
	n, err := io.ReadFull(r, scratch)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n > maxPayload {
		return nil, fmt.Errorf("%w: exceeds %d bytes", errTooLarge, maxPayload)
	}
	out := make([]byte, n)
	copy(out, scratch[:n])
	return out, nil
}
