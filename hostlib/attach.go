package hostlib

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
)

// Disk formats a DiskRecord may name (the server's kms.Format* values).
const (
	FormatLUKS1 = cryptsetup.LUKS1
	FormatLUKS2 = cryptsetup.LUKS2
	FormatPlain = "plain"
)

// DiskRecord is how the key manager recorded a disk's encryption
// (GET /v1/secrets/{id}/lifecycle, "encryption"). Zero fields take
// cryptsetup.FormatOptions' defaults.
type DiskRecord struct {
	Format  string `json:"format"`
	Cipher  string `json:"cipher,omitempty"`
	KeySize int    `json:"key_size,omitempty"`
}

// Validate accepts the three formats a host can attach.
func (r DiskRecord) Validate() error {
	switch r.Format {
	case FormatLUKS1, FormatLUKS2, FormatPlain:
		return nil
	}
	return fmt.Errorf("%w: disk format %q (want luks1, luks2 or plain)", cryptsetup.ErrInvalid, r.Format)
}

// AttachResult tells what Attach did.
type AttachResult struct {
	UnlockResult
	// Formatted: the device had no LUKS header and was formatted first.
	Formatted bool   `json:"formatted"`
	Mapped    string `json:"mapped"`
}

// Attach maps dev as /dev/mapper/name the way os-brick's encryptors do on
// a volume attach: a LUKS disk without a header is formatted on first use
// (with the record's type, cipher and key size), then opened, with the
// legacy-passphrase fallback; a plain disk is opened with the record's
// cipher and key size. A device holding a LUKS header that refuses the
// secret is never formatted.
func (h *Host) Attach(ctx context.Context, dev, name string, s *Secret, rec DiskRecord, o cryptsetup.OpenOptions) (AttachResult, error) {
	res := AttachResult{Mapped: "/dev/mapper/" + name}
	if err := rec.Validate(); err != nil {
		return res, err
	}
	if rec.Format == FormatPlain {
		return res, h.OpenPlain(ctx, dev, name, s, cryptsetup.PlainOptions{Cipher: rec.Cipher, KeySizeBits: rec.KeySize, OpenOptions: o})
	}
	isLUKS, err := h.Cryptsetup.IsLUKS(ctx, dev)
	if err != nil {
		return res, err
	}
	if !isLUKS {
		fo := cryptsetup.FormatOptions{Type: rec.Format, Cipher: rec.Cipher, KeySizeBits: rec.KeySize}
		if err := h.Format(ctx, dev, s, fo); err != nil {
			return res, fmt.Errorf("format on first use: %w", err)
		}
		res.Formatted = true
	}
	res.UnlockResult, err = h.Open(ctx, dev, name, s, o)
	return res, err
}

// Extend grows the mapping to fill its grown device, as os-brick's
// extend_volume does, and returns the mapping's new size in bytes.
func (h *Host) Extend(ctx context.Context, name string, s *Secret) (int64, error) {
	pass, err := Passphrase(s)
	if err != nil {
		return 0, err
	}
	defer crypto.Zero(pass)
	if err := h.Cryptsetup.Resize(ctx, name, pass, 0); err != nil {
		return 0, err
	}
	return DeviceSize("/dev/mapper/" + name)
}

// DeviceSize is the size in bytes of a block device (or file).
func DeviceSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Seek(0, io.SeekEnd)
}
