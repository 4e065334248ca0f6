package cryptsetup

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/keywarden/keywarden/hostlib/internal/secretexec"
)

// LUKS header versions accepted by Format.
const (
	LUKS1 = "luks1"
	LUKS2 = "luks2"
)

// Cryptsetup runs one cryptsetup binary. The zero value finds it on PATH.
type Cryptsetup struct {
	Path string // binary; "" = "cryptsetup" on PATH
}

// New returns a Cryptsetup using the binary at path ("" = PATH lookup).
func New(path string) *Cryptsetup { return &Cryptsetup{Path: path} }

func (c *Cryptsetup) bin() (string, error) {
	p := c.Path
	if p == "" {
		p = "cryptsetup"
	}
	full, err := exec.LookPath(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	return full, nil
}

// run executes one action; stdin and extra (at /dev/fd/3...) carry secrets.
func (c *Cryptsetup) run(ctx context.Context, op, target string, stdin []byte, extra [][]byte, args ...string) (secretexec.Result, error) {
	if strings.HasPrefix(target, "-") {
		// A device named like an option would change the command's meaning.
		return secretexec.Result{}, fmt.Errorf("%w: target %q", ErrInvalid, target)
	}
	bin, err := c.bin()
	if err != nil {
		return secretexec.Result{}, err
	}
	res, err := secretexec.Run(ctx, secretexec.Cmd{Path: bin, Args: args, Stdin: stdin, Files: extra})
	if err != nil {
		return res, fmt.Errorf("cryptsetup %s %s: %w", op, target, err)
	}
	if res.ExitCode != 0 {
		return res, &Error{Op: op, Target: target, ExitCode: res.ExitCode,
			Stderr: string(res.Stderr), Kind: classify(res.ExitCode, string(res.Stderr))}
	}
	return res, nil
}

// Version returns cryptsetup's version ("2.6.1").
func (c *Cryptsetup) Version(ctx context.Context) (string, error) {
	res, err := c.run(ctx, "version", "", nil, nil, "--version")
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) < 2 {
		return "", fmt.Errorf("cryptsetup --version: unexpected output %q", res.Stdout)
	}
	return f[1], nil
}

// IsLUKS reports whether dev carries a LUKS header cryptsetup recognises.
func (c *Cryptsetup) IsLUKS(ctx context.Context, dev string) (bool, error) {
	_, err := c.run(ctx, "isLuks", dev, nil, nil, "isLuks", dev)
	var ce *Error
	if errors.As(err, &ce) && ce.ExitCode == 1 && !errors.Is(err, ErrNoDeviceMapper) {
		return false, nil
	}
	return err == nil, err
}

// TestPassphrase checks pass against dev's keyslots without creating a
// mapping, so it works where device-mapper does not.
func (c *Cryptsetup) TestPassphrase(ctx context.Context, dev string, pass []byte) error {
	_, err := c.run(ctx, "open --test-passphrase", dev, pass, nil,
		"open", "--type", "luks", "--test-passphrase", "--key-file=-", dev)
	return err
}
