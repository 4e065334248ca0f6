package hostlib

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/luks"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
)

// ImageSpec is an encrypted image and the secret that opens it.
type ImageSpec struct {
	Path   string
	Format string // qemuimg.QCOW2 or qemuimg.LUKS; "" on a source = probe
	Secret *Secret
}

// ConvertResult tells how a conversion went.
type ConvertResult struct {
	// DecryptSize is the source's decrypted size (os_decrypt_size).
	DecryptSize int64 `json:"decrypt_size"`
	// SourceLegacy: the source only opened with the legacy passphrase.
	SourceLegacy bool `json:"source_legacy"`
	// TargetCreator is who wrote the target's header: qemu-img,
	// cryptsetup (fast profile) or "existing".
	TargetCreator string `json:"target_creator"`
}

// CreateImage creates an encrypted image. With the fast profile a raw LUKS
// image is formatted by cryptsetup (sub-second) instead of qemu-img, whose
// PBKDF benchmark alone takes ~2 s; QEMU opens either.
func (h *Host) CreateImage(ctx context.Context, path string, s *Secret, o qemuimg.CreateOptions) (creator string, err error) {
	p, err := h.profile(s)
	if err != nil {
		return "", err
	}
	pass, err := Passphrase(s)
	if err != nil {
		return "", err
	}
	defer crypto.Zero(pass)
	if h.useCryptsetupImage(ctx, p, o, path) {
		return "cryptsetup", h.createRawLUKS(ctx, path, pass, o.SizeBytes, p.PBKDF)
	}
	if o.IterTimeMS == 0 {
		o.IterTimeMS = p.QemuIterTimeMS
	}
	return "qemu-img", h.QemuImg.Create(ctx, path, pass, o)
}

// ConvertImage copies src into dst (raw LUKS unless dst.Format says
// otherwise) under dst's secret, or src's when dst.Secret is nil. A source
// refusing its passphrase is retried with the legacy form.
func (h *Host) ConvertImage(ctx context.Context, src, dst ImageSpec, o qemuimg.ConvertOptions) (ConvertResult, error) {
	var res ConvertResult
	if dst.Secret == nil {
		dst.Secret = src.Secret
	}
	if dst.Format == "" {
		dst.Format = qemuimg.LUKS
	}
	info, err := h.QemuImg.Info(ctx, src.Path, src.Format)
	if err != nil {
		return res, err
	}
	if info.Cipher == "" {
		return res, fmt.Errorf("%s: %w (format %s)", src.Path, qemuimg.ErrNotEncrypted, info.Format)
	}
	src.Format, res.DecryptSize = info.Format, info.VirtualSize

	p, err := h.profile(dst.Secret)
	if err != nil {
		return res, err
	}
	srcPass, err := Passphrase(src.Secret)
	if err != nil {
		return res, err
	}
	defer crypto.Zero(srcPass)
	dstPass, err := Passphrase(dst.Secret)
	if err != nil {
		return res, err
	}
	defer crypto.Zero(dstPass)

	created := false
	switch {
	case o.TargetExists:
		res.TargetCreator = "existing"
	case h.useCryptsetupImage(ctx, p, withFormat(o.Create, dst.Format), dst.Path):
		if err := h.createRawLUKS(ctx, dst.Path, dstPass, res.DecryptSize, p.PBKDF); err != nil {
			return res, err
		}
		o.TargetExists, created, res.TargetCreator = true, true, "cryptsetup"
	default:
		if o.Create.IterTimeMS == 0 {
			o.Create.IterTimeMS = p.QemuIterTimeMS
		}
		res.TargetCreator = "qemu-img"
	}

	convert := func(pass []byte) error {
		return h.QemuImg.Convert(ctx, qemuimg.Image{Path: src.Path, Format: src.Format, Passphrase: pass},
			qemuimg.Image{Path: dst.Path, Format: dst.Format, Passphrase: dstPass}, o)
	}
	err = convert(srcPass)
	if errors.Is(err, qemuimg.ErrWrongPassphrase) {
		if legacy, ok := LegacyPassphrase(src.Secret); ok {
			if convert(legacy) == nil {
				err, res.SourceLegacy = nil, true
			}
			crypto.Zero(legacy)
		}
	}
	if err != nil && created {
		os.Remove(dst.Path)
	}
	return res, err
}

// useCryptsetupImage: the profile asks for it, the cipher is the one
// cryptsetup and QEMU share by default, the target is a new or regular file
// and cryptsetup is there.
func (h *Host) useCryptsetupImage(ctx context.Context, p Profile, o qemuimg.CreateOptions, path string) bool {
	if !p.CryptsetupImages || o.Format != qemuimg.LUKS || h.Cryptsetup == nil {
		return false
	}
	def := func(v, d string) bool { return v == "" || v == d }
	if !def(o.CipherAlg, "aes-256") || !def(o.CipherMode, "xts") || !def(o.IVGenAlg, "plain64") ||
		o.IVGenHashAlg != "" || !def(o.HashAlg, "sha256") {
		return false
	}
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return false
	}
	_, err := h.Cryptsetup.Version(ctx)
	return err == nil
}

// luksHeadroom leaves room for any LUKS header before the payload is known.
const luksHeadroom = 16 << 20

// createRawLUKS writes a raw LUKS image of size decrypted bytes: format a
// file with headroom, then trim it to the header's payload offset + size.
func (h *Host) createRawLUKS(ctx context.Context, path string, pass []byte, size int64, kdf cryptsetup.PBKDF) (err error) {
	if size <= 0 {
		return fmt.Errorf("%w: image size %d", cryptsetup.ErrInvalid, size)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	err = f.Truncate(size + luksHeadroom)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	o := cryptsetup.FormatOptions{Type: cryptsetup.LUKS1, Cipher: "aes-xts-plain64", KeySizeBits: 512, PBKDF: kdf}
	if err := h.Cryptsetup.Format(ctx, path, pass, o); err != nil {
		return err
	}
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	hdr, err := luks.Read(r)
	r.Close()
	if err != nil {
		return err
	}
	return os.Truncate(path, hdr.PayloadOffset+size)
}

func withFormat(o qemuimg.CreateOptions, format string) qemuimg.CreateOptions {
	o.Format = format
	return o
}
