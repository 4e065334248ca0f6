package main

import (
	"github.com/keywarden/keywarden/hostlib"
	"github.com/spf13/cobra"
)

func verifyCmd(o *options) *cobra.Command {
	var ref string
	cmd := &cobra.Command{
		Use:   "verify PATH --ref REF",
		Short: "Check the secret against a LUKS header in pure Go (file, block device or qcow2; no root or device-mapper)",
		Args:  args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			s, err := o.fetchSecret(cmd, ref)
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := hostlib.Verify(a[0], s)
			if err != nil {
				return err
			}
			if v.Legacy {
				o.warn("only the legacy passphrase matches; run 'open --test-passphrase' to re-key")
			}
			return o.print(map[string]any{"path": a[0], "luks_version": v.Header.Version, "container": v.Header.Container,
				"cipher": v.Header.Cipher, "slot": v.Slot, "legacy": v.Legacy})
		},
	}
	cmd.Flags().StringVar(&ref, "ref", "", "secret reference")
	return cmd
}
