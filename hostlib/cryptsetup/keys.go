package cryptsetup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/keywarden/keywarden/hostlib/internal/secretexec"
	"github.com/keywarden/keywarden/hostlib/luks"
)

// AddKey adds newPass in a free keyslot (or slot, when >= 0), authorised by
// existing. The existing passphrase goes on stdin, the new one on
// /dev/fd/3.
func (c *Cryptsetup) AddKey(ctx context.Context, dev string, existing, newPass []byte, kdf PBKDF, slot int) error {
	if len(newPass) == 0 {
		return fmt.Errorf("%w: empty passphrase", ErrInvalid)
	}
	args, err := keyArgs(dev, "luksAddKey", kdf)
	if err != nil {
		return err
	}
	if slot >= 0 {
		args = append(args, "--key-slot", strconv.Itoa(slot))
	}
	_, err = c.run(ctx, "luksAddKey", dev, existing, [][]byte{newPass}, append(args, dev, secretexec.FDPath(0))...)
	return err
}

// ChangeKey replaces the keyslot opened by old with newPass.
func (c *Cryptsetup) ChangeKey(ctx context.Context, dev string, old, newPass []byte, kdf PBKDF) error {
	if len(newPass) == 0 {
		return fmt.Errorf("%w: empty passphrase", ErrInvalid)
	}
	args, err := keyArgs(dev, "luksChangeKey", kdf)
	if err != nil {
		return err
	}
	_, err = c.run(ctx, "luksChangeKey", dev, old, [][]byte{newPass}, append(args, dev, secretexec.FDPath(0))...)
	return err
}

// RemoveKey wipes the keyslot that pass opens. Non-interactively cryptsetup
// would also wipe the last keyslot and make the disk unreadable forever, so
// that is refused with ErrLastKeyslot when the header can be read.
func (c *Cryptsetup) RemoveKey(ctx context.Context, dev string, pass []byte) error {
	if n, err := activeSlots(dev); err == nil && n <= 1 {
		return fmt.Errorf("cryptsetup luksRemoveKey %s: %w", dev, ErrLastKeyslot)
	}
	_, err := c.run(ctx, "luksRemoveKey", dev, pass, nil, "luksRemoveKey", "--batch-mode", "--key-file=-", dev)
	var ce *Error
	if errors.As(err, &ce) && ce.Kind == ErrInvalid && ce.ExitCode == 1 {
		// 2.x says "No usable keyslot is available" when no slot matches.
		ce.Kind = ErrWrongPassphrase
	}
	return err
}

func keyArgs(dev, op string, kdf PBKDF) ([]string, error) {
	typ := LUKS2
	if v, err := headerVersion(dev); err == nil && v == 1 {
		typ = LUKS1
	}
	a, err := kdf.args(typ)
	if err != nil {
		return nil, err
	}
	return append([]string{op, "--batch-mode", "--key-file=-"}, a...), nil
}

func headerVersion(dev string) (int, error) {
	h, err := readHeader(dev)
	if err != nil {
		return 0, err
	}
	return h.Version, nil
}

func activeSlots(dev string) (int, error) {
	h, err := readHeader(dev)
	if err != nil {
		return 0, err
	}
	return len(h.Keyslots), nil
}

func readHeader(dev string) (*luks.Header, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return luks.Read(f)
}
