package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func fetchCmd(o *options) *cobra.Command {
	var fd int
	cmd := &cobra.Command{
		Use:   "fetch REF",
		Short: "Fetch a secret and print its metadata; --passphrase-fd hands the LUKS passphrase to a pipe",
		Long: "Fetch a secret (https://host:port/v1/secrets/UUID, kmip:ID or a bare id) with the host's\n" +
			"credentials and print its metadata as JSON. The material is never printed. With --passphrase-fd N\n" +
			"the derived LUKS passphrase is written to inherited descriptor N, which must be a pipe, socket or\n" +
			"terminal: regular files are refused so the secret never lands on disk.",
		Args: args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			s, err := o.fetchSecret(cmd, a[0])
			if err != nil {
				return err
			}
			defer s.Close()
			if tookStdout, err := handOver(fd, s); err != nil || tookStdout {
				return err
			}
			return o.print(s)
		},
	}
	cmd.Flags().IntVar(&fd, "passphrase-fd", -1, "write the derived LUKS passphrase (no newline) to this descriptor")
	return cmd
}

// handOver checks s can become a passphrase and, when fd >= 0, writes it
// there. tookStdout: fd 1 carried it, so no JSON may follow.
func handOver(fd int, s *hostlib.Secret) (tookStdout bool, err error) {
	if err := s.Usable(); err != nil {
		return false, err
	}
	if fd < 0 {
		return false, nil
	}
	return fd == 1, writePassphrase(fd, s)
}

func writePassphrase(fd int, s *hostlib.Secret) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return usageError{fmt.Errorf("--passphrase-fd %d: %w", fd, err)}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR:
	default:
		return usageError{errors.New("--passphrase-fd: refusing to write a secret to a file; use a pipe")}
	}
	pass, err := hostlib.Passphrase(s)
	if err != nil {
		return err
	}
	defer crypto.Zero(pass)
	f := os.NewFile(uintptr(fd), "passphrase-fd")
	_, err = f.Write(pass)
	return err
}
