package main

import (
	"errors"

	"github.com/keywarden/keywarden/hostlib"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/spf13/cobra"
)

func openCmd(o *options) *cobra.Command {
	var (
		ref        string
		oo         cryptsetup.OpenOptions
		testOnly   bool
		noRekey    bool
		plain      bool
		plainOpts  cryptsetup.PlainOptions
		rangeCheck = func(cmd *cobra.Command, a []string) error {
			if err := cobra.RangeArgs(1, 2)(cmd, a); err != nil {
				return usageError{err}
			}
			return nil
		}
	)
	cmd := &cobra.Command{
		Use:     "open DEVICE NAME --ref REF | open DEVICE --test-passphrase --ref REF",
		Aliases: []string{"luks-open"},
		Short:   "Unlock DEVICE as /dev/mapper/NAME (legacy passphrase fallback and re-key included)",
		Long: "Unlock DEVICE as /dev/mapper/NAME. If cryptsetup refuses the passphrase and the secret has a\n" +
			"legacy mangled-hex form that opens it, the correct passphrase is added and the legacy one removed.\n" +
			"--test-passphrase does all of that without creating a mapping (no device-mapper needed).\n" +
			"--plain opens a legacy headerless dm-crypt disk instead.",
		Args: rangeCheck,
		RunE: func(cmd *cobra.Command, a []string) error {
			if (!testOnly || plain) && len(a) != 2 {
				return usageError{errors.New("open needs DEVICE and NAME (or --test-passphrase)")}
			}
			if testOnly && plain {
				return usageError{errors.New("--test-passphrase needs a LUKS header; plain dm-crypt has none")}
			}
			h, err := o.host()
			if err != nil {
				return err
			}
			h.NoRekey = noRekey
			s, err := o.fetchSecret(cmd, ref)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx := cmd.Context()
			out := map[string]any{"device": a[0]}
			var res hostlib.UnlockResult
			switch {
			case plain:
				plainOpts.OpenOptions = oo
				err = h.OpenPlain(ctx, a[0], a[1], s, plainOpts)
			case testOnly:
				res, err = h.TestUnlock(ctx, a[0], s)
			default:
				res, err = h.Open(ctx, a[0], a[1], s, oo)
			}
			if err != nil {
				return err
			}
			if len(a) == 2 && !testOnly {
				out["name"], out["mapped"] = a[1], "/dev/mapper/"+a[1]
			}
			out["legacy"], out["rekeyed"] = res.Legacy, res.Rekeyed
			if res.RekeyErr != nil {
				out["rekey_error"] = res.RekeyErr.Error()
				o.warn("device unlocked with the legacy passphrase, but re-keying failed: %v", res.RekeyErr)
			}
			return o.print(out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "secret reference")
	f.BoolVar(&oo.AllowDiscards, "allow-discards", false, "pass discards (TRIM) through")
	f.BoolVar(&oo.ReadOnly, "read-only", false, "map read-only")
	f.BoolVar(&testOnly, "test-passphrase", false, "check (and re-key) without creating a mapping")
	f.BoolVar(&noRekey, "no-rekey", false, "leave a legacy keyslot in place")
	f.BoolVar(&plain, "plain", false, "legacy plain dm-crypt (no header)")
	f.StringVar(&plainOpts.Cipher, "cipher", "aes-xts-plain64", "plain dm-crypt cipher")
	f.IntVar(&plainOpts.KeySizeBits, "key-size", 512, "plain dm-crypt key bits")
	f.Int64Var(&plainOpts.OffsetSectors, "offset", 0, "plain dm-crypt data offset in 512-byte sectors")
	o.profileFlag(cmd)
	return cmd
}

func closeCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "close NAME",
		Aliases: []string{"luks-close"},
		Short:   "Remove /dev/mapper/NAME (succeeds if it is not open)",
		Args:    args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			h, err := o.host()
			if err != nil {
				return err
			}
			if err := h.Close(cmd.Context(), a[0]); err != nil {
				return err
			}
			return o.print(map[string]any{"name": a[0], "closed": true})
		},
	}
}
