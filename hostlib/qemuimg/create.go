package qemuimg

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// CreateOptions shape a new encrypted image. Empty fields keep QEMU's
// defaults: aes-256, xts, plain64, sha256, 2000 ms of PBKDF2.
type CreateOptions struct {
	Format       string // QCOW2 or LUKS
	SizeBytes    int64  // virtual (decrypted) size
	CipherAlg    string
	CipherMode   string
	IVGenAlg     string
	IVGenHashAlg string // Nova sets sha256; cryptsetup cannot check such headers
	HashAlg      string
	IterTimeMS   int // PBKDF2 time target; small for machine secrets
}

// luksOpts renders the LUKS options for secret id, each prefixed (qcow2
// nests them under "encrypt.").
func (o CreateOptions) luksOpts(prefix, id string) string {
	opts := []string{prefix + "key-secret=" + id}
	add := func(k, v string) {
		if v != "" {
			opts = append(opts, prefix+k+"="+optValue(v))
		}
	}
	add("cipher-alg", o.CipherAlg)
	add("cipher-mode", o.CipherMode)
	add("ivgen-alg", o.IVGenAlg)
	add("ivgen-hash-alg", o.IVGenHashAlg)
	add("hash-alg", o.HashAlg)
	if o.IterTimeMS > 0 {
		add("iter-time", strconv.Itoa(o.IterTimeMS))
	}
	return strings.Join(opts, ",")
}

func (o CreateOptions) formatOpts(id string) (string, error) {
	switch o.Format {
	case QCOW2:
		return "encrypt.format=luks," + o.luksOpts("encrypt.", id), nil
	case LUKS:
		return o.luksOpts("", id), nil
	}
	return "", fmt.Errorf("%w: image format %q (want %s or %s)", ErrInvalid, o.Format, QCOW2, LUKS)
}

// Create writes a new encrypted image at path.
func (q *QemuImg) Create(ctx context.Context, path string, pass []byte, o CreateOptions) error {
	if len(pass) == 0 || o.SizeBytes <= 0 {
		return fmt.Errorf("%w: need a passphrase and a positive size", ErrInvalid)
	}
	opts, err := o.formatOpts("kw-key")
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path) // an absolute path cannot parse as a protocol prefix
	if err != nil {
		return err
	}
	_, err = q.run(ctx, "create", path, [][]byte{pass}, nil,
		"create", "-q", "-f", o.Format, "--object", secretObject("kw-key", 0), "-o", opts,
		abs, strconv.FormatInt(o.SizeBytes, 10))
	return err
}
