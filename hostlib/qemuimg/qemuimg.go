package qemuimg

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/keywarden/keywarden/hostlib/internal/secretexec"
)

// Image formats this package handles.
const (
	QCOW2 = "qcow2" // qcow2 with LUKS encryption inside
	LUKS  = "luks"  // raw LUKS: a LUKS1 header followed by the payload
)

// SecretMode is how secrets reach qemu-img.
type SecretMode = secretexec.Mode

const (
	// SecretPipe: an anonymous pipe per secret (default).
	SecretPipe = secretexec.Pipe
	// SecretMemfd: a sealed anonymous in-memory file per secret.
	SecretMemfd = secretexec.Memfd
)

// QemuImg runs one qemu-img binary. The zero value finds it on PATH and
// passes secrets through pipes.
type QemuImg struct {
	Path string
	Mode SecretMode
}

// New returns a QemuImg using the binary at path ("" = PATH lookup).
func New(path string) *QemuImg { return &QemuImg{Path: path} }

func (q *QemuImg) bin() (string, error) {
	p := q.Path
	if p == "" {
		p = "qemu-img"
	}
	full, err := exec.LookPath(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	return full, nil
}

// benchmarkAttempts bounds the retries of QEMU's PBKDF benchmark, which
// fails ("Unable to get accurate CPU usage") when the CPU time it measures
// is disturbed, as on a busy hypervisor: once was not enough under load.
const benchmarkAttempts = 5

// run executes qemu-img with secrets at secretexec.FDPath(i); a failure of
// QEMU's flaky PBKDF benchmark is retried, with a short pause.
func (q *QemuImg) run(ctx context.Context, op, target string, secrets [][]byte, stdout io.Writer, args ...string) (secretexec.Result, error) {
	bin, err := q.bin()
	if err != nil {
		return secretexec.Result{}, err
	}
	var res secretexec.Result
	for attempt := 1; ; attempt++ {
		res, err = secretexec.Run(ctx, secretexec.Cmd{Path: bin, Args: args, Files: secrets, Mode: q.Mode, Stdout: stdout})
		if err != nil {
			return res, fmt.Errorf("qemu-img %s %s: %w", op, target, err)
		}
		if res.ExitCode == 0 || !transient(string(res.Stderr)) || attempt == benchmarkAttempts {
			break
		}
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	if res.ExitCode != 0 {
		return res, &Error{Op: op, Target: target, ExitCode: res.ExitCode, Stderr: string(res.Stderr), Kind: classify(string(res.Stderr))}
	}
	return res, nil
}

// Version returns qemu-img's version ("7.2.22").
func (q *QemuImg) Version(ctx context.Context) (string, error) {
	res, err := q.run(ctx, "version", "", nil, nil, "--version")
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) < 3 || f[1] != "version" {
		return "", fmt.Errorf("qemu-img --version: unexpected output %q", firstLine(res.Stdout))
	}
	return f[2], nil
}

// secretObject is the --object argument for secret i, read from its fd.
func secretObject(id string, i int) string {
	return "secret,id=" + id + ",file=" + secretexec.FDPath(i)
}

// optValue escapes a value for QEMU's comma-separated option syntax, where
// a literal comma is written twice. Without it a path holding ",x=y" could
// inject options.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}
