package cryptsetup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// OpenOptions tune a device-mapper mapping.
type OpenOptions struct {
	AllowDiscards bool // pass TRIM through (leaks which blocks are unused)
	ReadOnly      bool
}

func (o OpenOptions) args() []string {
	var a []string
	if o.AllowDiscards {
		a = append(a, "--allow-discards")
	}
	if o.ReadOnly {
		a = append(a, "--readonly")
	}
	return a
}

// Open maps a LUKS device to /dev/mapper/name. It needs device-mapper;
// without it the error is ErrNoDeviceMapper.
func (c *Cryptsetup) Open(ctx context.Context, dev, name string, pass []byte, o OpenOptions) error {
	if err := validName(name); err != nil {
		return err
	}
	args := append([]string{"open", "--type", "luks", "--key-file=-"}, o.args()...)
	_, err := c.run(ctx, "luksOpen", dev, pass, nil, append(args, dev, name)...)
	return err
}

// Close removes the mapping. Closing a mapping that is not active is not an
// error, so callers may retry a teardown safely.
func (c *Cryptsetup) Close(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	_, err := c.run(ctx, "close", name, nil, nil, "close", name)
	if errors.Is(err, ErrNotActive) || errors.Is(err, ErrNoDevice) {
		return nil
	}
	return err
}

// Resize grows or shrinks an active mapping to sizeSectors (512-byte
// sectors), or to fill its device when 0. LUKS2 may need the passphrase when
// the volume key lives in the kernel keyring, so it is always offered.
func (c *Cryptsetup) Resize(ctx context.Context, name string, pass []byte, sizeSectors int64) error {
	if err := validName(name); err != nil {
		return err
	}
	args := []string{"resize", "--key-file=-"}
	if sizeSectors > 0 {
		args = append(args, "--size", strconv.FormatInt(sizeSectors, 10))
	}
	_, err := c.run(ctx, "resize", name, pass, nil, append(args, name)...)
	return err
}

// Active reports whether a mapping called name exists.
func (c *Cryptsetup) Active(ctx context.Context, name string) (bool, error) {
	if err := validName(name); err != nil {
		return false, err
	}
	_, err := c.run(ctx, "status", name, nil, nil, "status", name)
	var ce *Error
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNoDeviceMapper):
		return false, err
	case errors.As(err, &ce) && (ce.ExitCode == 4 || errors.Is(err, ErrNotActive)):
		return false, nil
	}
	return false, err
}

// validName keeps mapping names to what device-mapper accepts and what
// cannot be mistaken for an option.
func validName(name string) error {
	if name == "" || len(name) > 127 || name[0] == '-' {
		return fmt.Errorf("%w: mapping name %q", ErrInvalid, name)
	}
	for _, r := range name {
		if r == '/' || r <= ' ' || r > '~' {
			return fmt.Errorf("%w: mapping name %q", ErrInvalid, name)
		}
	}
	return nil
}
