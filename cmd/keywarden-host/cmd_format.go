package main

import (
	"github.com/keywarden/keywarden/hostlib"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/spf13/cobra"
)

func formatCmd(o *options) *cobra.Command {
	var ref string
	var fo cryptsetup.FormatOptions
	cmd := &cobra.Command{
		Use:     "format DEVICE --ref REF",
		Aliases: []string{"luks-format"},
		Short:   "Write a LUKS header to DEVICE (file or block device) with the secret's passphrase",
		Args:    args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			h, err := o.host()
			if err != nil {
				return err
			}
			s, err := o.fetchSecret(cmd, ref)
			if err != nil {
				return err
			}
			defer s.Close()
			p, err := hostlib.ParseProfile(o.profile, s)
			if err != nil {
				return usageError{err}
			}
			if err := h.Format(cmd.Context(), a[0], s, fo); err != nil {
				return err
			}
			return o.print(map[string]any{"device": a[0], "type": fo.Type, "profile": p.Name, "secret": s})
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "secret reference")
	f.StringVar(&fo.Type, "type", cryptsetup.LUKS1, "luks1 (QEMU can open it) or luks2")
	f.StringVar(&fo.Cipher, "cipher", "aes-xts-plain64", "data cipher")
	f.IntVar(&fo.KeySizeBits, "key-size", 512, "volume key bits (512 = AES-256-XTS)")
	f.IntVar(&fo.SectorSize, "sector-size", 0, "LUKS2 data sector size (512 or 4096)")
	f.StringVar(&fo.Label, "label", "", "LUKS2 label")
	o.profileFlag(cmd)
	return cmd
}
