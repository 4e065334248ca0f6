package qemuimg

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
)

// Info is what qemu-img reports about an image without its secret.
type Info struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"` // the decrypted size: os_decrypt_size
	ActualSize  int64  `json:"actual-size"`
	Encrypted   bool   `json:"encrypted"`
	Cipher      string `json:"-"` // e.g. aes-256-xts-plain64, when LUKS
}

type infoJSON struct {
	Info
	FormatSpecific struct {
		Type string `json:"type"`
		Data struct {
			CipherAlg  string `json:"cipher-alg"`
			CipherMode string `json:"cipher-mode"`
			IVGenAlg   string `json:"ivgen-alg"`
			Encrypt    *struct {
				Format     string `json:"format"`
				CipherAlg  string `json:"cipher-alg"`
				CipherMode string `json:"cipher-mode"`
				IVGenAlg   string `json:"ivgen-alg"`
			} `json:"encrypt"`
		} `json:"data"`
	} `json:"format-specific"`
}

// Info reads an image's metadata. format may be "" to let qemu-img probe,
// which is only safe for images the host itself produced or checked.
// Opened shared (-U) so it works on an image a VM is using.
func (q *QemuImg) Info(ctx context.Context, path, format string) (Info, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Info{}, err
	}
	args := []string{"info", "--output=json", "-U"}
	if format != "" {
		args = append(args, "-f", format)
	}
	res, err := q.run(ctx, "info", path, nil, nil, append(args, abs)...)
	if err != nil {
		return Info{}, err
	}
	var j infoJSON
	if err := json.Unmarshal(res.Stdout, &j); err != nil {
		return Info{}, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	info := j.Info
	d := j.FormatSpecific.Data
	switch {
	case j.FormatSpecific.Type == "luks":
		info.Cipher = d.CipherAlg + "-" + d.CipherMode + "-" + d.IVGenAlg
	case d.Encrypt != nil && d.Encrypt.Format == "luks":
		info.Cipher = d.Encrypt.CipherAlg + "-" + d.Encrypt.CipherMode + "-" + d.Encrypt.IVGenAlg
	}
	return info, nil
}

// DecryptSize is the image's size once decrypted (Glance's os_decrypt_size):
// the volume an image converts into must be at least this large.
func (q *QemuImg) DecryptSize(ctx context.Context, path, format string) (int64, error) {
	info, err := q.Info(ctx, path, format)
	if err != nil {
		return 0, err
	}
	if !info.Encrypted || info.Cipher == "" {
		return 0, fmt.Errorf("qemu-img info %s: %w (format %s)", path, ErrNotEncrypted, info.Format)
	}
	return info.VirtualSize, nil
}
