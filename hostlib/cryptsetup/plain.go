package cryptsetup

import (
	"context"
	"fmt"
	"strconv"
)

// PlainOptions describe a legacy headerless dm-crypt mapping: nothing on
// disk records them, so they must match what the disk was written with.
type PlainOptions struct {
	Cipher        string // [aes-xts-plain64]
	KeySizeBits   int    // [512]
	OffsetSectors int64  // data start on the device
	OpenOptions
}

// OpenPlain maps dev with plain dm-crypt. key is read byte-exact as the key
// (cryptsetup does not hash a key file); exactly KeySizeBits/8 bytes of it
// are used, and a shorter key is refused. Close with Close.
func (c *Cryptsetup) OpenPlain(ctx context.Context, dev, name string, key []byte, o PlainOptions) error {
	if err := validName(name); err != nil {
		return err
	}
	cipher := o.Cipher
	if cipher == "" {
		cipher = "aes-xts-plain64"
	}
	bits := o.KeySizeBits
	if bits == 0 {
		bits = 512
	}
	if bits%8 != 0 || len(key) < bits/8 {
		return fmt.Errorf("%w: plain key of %d bytes for a %d-bit cipher key", ErrInvalid, len(key), bits)
	}
	args := []string{"open", "--type", "plain", "--cipher", cipher, "--key-size", strconv.Itoa(bits),
		"--key-file=-", "--keyfile-size", strconv.Itoa(bits / 8)}
	if o.OffsetSectors > 0 {
		args = append(args, "--offset", strconv.FormatInt(o.OffsetSectors, 10))
	}
	args = append(args, o.OpenOptions.args()...)
	_, err := c.run(ctx, "plainOpen", dev, key, nil, append(args, dev, name)...)
	return err
}
