package hosttest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/keywarden/keywarden/hostlib/internal/secretexec"
)

// QemuIO runs one qemu-io command (e.g. "read -P 0xab 0 1M") on an
// encrypted image, the passphrase on an inherited pipe. A failed pattern
// check is an error, so a read-back proves the data.
func QemuIO(path, format string, pass []byte, command string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	file := "file.filename=" + strings.ReplaceAll(abs, ",", ",,")
	var opts string
	switch format {
	case "qcow2":
		opts = "driver=qcow2,encrypt.key-secret=kw-io," + file
	case "luks":
		opts = "driver=luks,key-secret=kw-io," + file
	default:
		return fmt.Errorf("qemu-io: format %q", format)
	}
	res, err := secretexec.Run(context.Background(), secretexec.Cmd{Path: "qemu-io",
		Args:  []string{"--object", "secret,id=kw-io,file=" + secretexec.FDPath(0), "--image-opts", opts, "-c", command},
		Files: [][]byte{pass}})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("qemu-io %s: exit %d: %s%s", command, res.ExitCode, res.Stdout, res.Stderr)
	}
	return nil
}
