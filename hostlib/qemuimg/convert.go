package qemuimg

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Image is one side of a conversion.
type Image struct {
	Path       string
	Format     string // QCOW2 or LUKS; "" on a source = probe with qemu-img info
	Passphrase []byte
}

// ConvertOptions tune Convert.
type ConvertOptions struct {
	// TargetExists writes into an existing LUKS image or formatted block
	// device (-n) instead of creating the target; it must be at least the
	// source's decrypted size.
	TargetExists bool
	// Create shapes a target qemu-img creates (Format and SizeBytes are
	// taken from the target and the source).
	Create CreateOptions
	// Progress, if set, receives the completed percentage as qemu-img
	// reports it (0..100).
	Progress func(percent float64)
}

// Convert copies an encrypted image into another encrypted image, typically
// qcow2+LUKS → raw LUKS when an image becomes a volume. Data is decrypted
// only inside qemu-img's memory; the target may use a different secret.
func (q *QemuImg) Convert(ctx context.Context, src, dst Image, o ConvertOptions) error {
	if len(src.Passphrase) == 0 || len(dst.Passphrase) == 0 {
		return fmt.Errorf("%w: both images need a passphrase", ErrInvalid)
	}
	if src.Format == "" {
		info, err := q.Info(ctx, src.Path, "")
		if err != nil {
			return err
		}
		if info.Cipher == "" {
			return fmt.Errorf("%s: %w (format %s)", src.Path, ErrNotEncrypted, info.Format)
		}
		src.Format = info.Format
	}
	srcOpts, err := imageOpts(src, "kw-src")
	if err != nil {
		return err
	}
	args := []string{"convert", "--object", secretObject("kw-src", 0), "--object", secretObject("kw-dst", 1)}
	if o.Progress != nil {
		args = append(args, "-p")
	}
	if dst.Format == LUKS {
		// Raw targets do not fragment, so let writes land out of order.
		args = append(args, "-W")
	}
	if o.TargetExists {
		dstOpts, err := imageOpts(dst, "kw-dst")
		if err != nil {
			return err
		}
		args = append(args, "-n", "--image-opts", "--target-image-opts", srcOpts, dstOpts)
	} else {
		c := o.Create
		c.Format = dst.Format
		opts, err := c.formatOpts("kw-dst")
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(dst.Path)
		if err != nil {
			return err
		}
		args = append(args, "-O", dst.Format, "-o", opts, "--image-opts", srcOpts, abs)
	}
	var stdout io.Writer
	if o.Progress != nil {
		stdout = &progressWriter{report: o.Progress}
	}
	_, err = q.run(ctx, "convert", src.Path+" -> "+dst.Path, [][]byte{src.Passphrase, dst.Passphrase}, stdout, args...)
	return err
}

// imageOpts renders --image-opts for an encrypted image whose key is the
// secret object id.
func imageOpts(img Image, id string) (string, error) {
	abs, err := filepath.Abs(img.Path)
	if err != nil {
		return "", err
	}
	file := "file.filename=" + optValue(abs)
	if st, err := os.Stat(abs); err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
		file += ",file.driver=host_device" // a volume attached to the host
	}
	switch img.Format {
	case QCOW2:
		return "driver=qcow2,encrypt.key-secret=" + id + "," + file, nil
	case LUKS:
		return "driver=luks,key-secret=" + id + "," + file, nil
	}
	return "", fmt.Errorf("%w: image format %q", ErrInvalid, img.Format)
}
