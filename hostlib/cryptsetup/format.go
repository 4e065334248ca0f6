package cryptsetup

import (
	"context"
	"fmt"
	"strconv"
)

// FormatOptions shape a new LUKS header. Zero fields take the defaults in
// brackets, chosen so QEMU can also open the result when Type is LUKS1.
type FormatOptions struct {
	Type        string // LUKS1 or LUKS2 [LUKS1]
	Cipher      string // [aes-xts-plain64]
	KeySizeBits int    // [512, i.e. AES-256 in XTS]
	SectorSize  int    // LUKS2 only: 512 or 4096 [cryptsetup decides]
	PBKDF       PBKDF  // [cryptsetup defaults]
	Label       string // LUKS2 only
	UUID        string
}

func (o FormatOptions) args() ([]string, error) {
	typ := o.Type
	if typ == "" {
		typ = LUKS1
	}
	if typ != LUKS1 && typ != LUKS2 {
		return nil, fmt.Errorf("%w: LUKS type %q", ErrInvalid, typ)
	}
	if typ == LUKS1 && ((o.SectorSize != 0 && o.SectorSize != 512) || o.Label != "") {
		return nil, fmt.Errorf("%w: sector size and label need LUKS2", ErrInvalid)
	}
	cipher := o.Cipher
	if cipher == "" {
		cipher = "aes-xts-plain64"
	}
	bits := o.KeySizeBits
	if bits == 0 {
		bits = 512
	}
	a := []string{"luksFormat", "--batch-mode", "--type", typ, "--cipher", cipher, "--key-size", strconv.Itoa(bits)}
	if o.SectorSize != 0 {
		a = append(a, "--sector-size", strconv.Itoa(o.SectorSize))
	}
	kdf, err := o.PBKDF.args(typ)
	if err != nil {
		return nil, err
	}
	a = append(a, kdf...)
	if o.Label != "" {
		a = append(a, "--label", o.Label)
	}
	if o.UUID != "" {
		a = append(a, "--uuid", o.UUID)
	}
	return append(a, "--key-file=-"), nil
}

// Format writes a new LUKS header to dev; everything on it is lost.
func (c *Cryptsetup) Format(ctx context.Context, dev string, pass []byte, o FormatOptions) error {
	if len(pass) == 0 {
		return fmt.Errorf("%w: empty passphrase", ErrInvalid)
	}
	args, err := o.args()
	if err != nil {
		return err
	}
	_, err = c.run(ctx, "luksFormat", dev, pass, nil, append(args, dev)...)
	return err
}
