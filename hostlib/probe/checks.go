package probe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/internal/secretexec"
	"github.com/keywarden/keywarden/hostlib/luks"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
)

// deviceMapper opens the control node and asks the driver for its version;
// a node can exist (libdevmapper creates it) while the kernel has no driver.
func deviceMapper(control string) Check {
	if control == "" {
		control = "/dev/mapper/control"
	}
	f, err := os.OpenFile(control, os.O_RDWR, 0)
	if err != nil {
		return Check{Reason: "cannot open " + control + ": " + err.Error()}
	}
	f.Close()
	if _, err := exec.LookPath("dmsetup"); err == nil {
		out, err := exec.Command("dmsetup", "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Driver version") {
			return Check{Reason: "dmsetup version: " + strings.TrimSpace(string(out))}
		}
	}
	return Check{Supported: true}
}

// tryLUKS formats a sparse scratch file with the fast profile, then checks
// the passphrase with cryptsetup and with the Go verifier.
func tryLUKS(ctx context.Context, cs *cryptsetup.Cryptsetup, dir, typ string, pass []byte) (string, Check) {
	path := filepath.Join(dir, typ+".img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		return "", Check{Reason: err.Error()}
	}
	if err := os.Truncate(path, 20<<20); err != nil {
		return "", Check{Reason: err.Error()}
	}
	if err := cs.Format(ctx, path, pass, cryptsetup.FormatOptions{Type: typ, PBKDF: cryptsetup.FastPBKDF}); err != nil {
		return "", Check{Reason: err.Error()}
	}
	if err := cs.TestPassphrase(ctx, path, pass); err != nil {
		return "", Check{Reason: err.Error()}
	}
	if _, _, err := luks.VerifyFile(path, pass); err != nil {
		return "", Check{Reason: "go verifier: " + err.Error()}
	}
	return path, Check{Supported: true}
}

// tryQemuLUKS has QEMU's own LUKS driver write and read back a pattern on
// the LUKS1 scratch image (a raw LUKS image as far as QEMU is concerned).
func tryQemuLUKS(ctx context.Context, qi *qemuimg.QemuImg, qemuIO, path string, pass []byte) Check {
	if path == "" {
		return Check{Reason: "no LUKS1 scratch image (cryptsetup missing or failed)"}
	}
	info, err := qi.Info(ctx, path, qemuimg.LUKS)
	if err != nil {
		return Check{Reason: err.Error()}
	}
	if !info.Encrypted {
		return Check{Reason: "qemu-img does not see the LUKS header"}
	}
	if qemuIO == "" {
		qemuIO = "qemu-io"
	}
	bin, err := exec.LookPath(qemuIO)
	if err != nil {
		return Check{Supported: true, Reason: "header read only: qemu-io not installed for a data round-trip"}
	}
	res, err := secretexec.Run(ctx, secretexec.Cmd{Path: bin, Files: [][]byte{pass}, Args: []string{
		"--object", "secret,id=kw-probe,file=" + secretexec.FDPath(0),
		"--image-opts", "driver=luks,key-secret=kw-probe,file.filename=" + strings.ReplaceAll(path, ",", ",,"),
		"-c", "write -P 0x5a 0 64k", "-c", "read -P 0x5a 0 64k"}})
	if err != nil {
		return Check{Reason: err.Error()}
	}
	if res.ExitCode != 0 || strings.Contains(string(res.Stdout), "verification failed") {
		return Check{Reason: "qemu-io round-trip failed: " + strings.TrimSpace(string(res.Stdout)+string(res.Stderr))}
	}
	return Check{Supported: true}
}

// qcow2Offers checks that qemu-img's qcow2 driver has LUKS encryption; a
// real qcow2+LUKS create would cost QEMU's ~2 s PBKDF benchmark.
func qcow2Offers(ctx context.Context, qi *qemuimg.QemuImg) Check {
	bin := qi.Path
	if bin == "" {
		bin = "qemu-img"
	}
	out, err := exec.CommandContext(ctx, bin, "create", "-f", "qcow2", "-o", "help").CombinedOutput()
	if err != nil {
		return Check{Reason: "qemu-img create -o help: " + err.Error()}
	}
	if !strings.Contains(string(out), "encrypt.format") || !strings.Contains(string(out), "luks") {
		return Check{Reason: "qemu-img's qcow2 driver has no LUKS encryption"}
	}
	return Check{Supported: true}
}
