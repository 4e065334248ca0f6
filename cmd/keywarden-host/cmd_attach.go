package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keywarden/keywarden/hostlib"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/fetch"
	"github.com/spf13/cobra"
)

// attach, detach and extend are os-brick's encryptor calls as commands:
// the mapping is called crypt-BASENAME (BASENAME of --link, else of the
// device) unless --name says otherwise, and --link is the connector's
// device symlink that attach re-points at the mapping.

func attachCmd(o *options) *cobra.Command {
	var (
		ref, link, name string
		flags           hostlib.DiskRecord
		oo              cryptsetup.OpenOptions
		noRekey         bool
	)
	cmd := &cobra.Command{
		Use:   "attach [DEVICE] --ref REF [--link PATH] [--name NAME]",
		Short: "Format on first use, open, and point --link at the mapping (os-brick's attach)",
		Long: "Open DEVICE (or the device --link points to) as /dev/mapper/NAME. The format (luks1, luks2,\n" +
			"plain), cipher and key size come from the key manager's record of the disk\n" +
			"(GET /v1/secrets/{id}/lifecycle); --type, --cipher and --key-size override it with a warning.\n" +
			"A LUKS disk with no LUKS header is formatted first; one whose header refuses the secret is\n" +
			"never formatted (exit 6). With --link, the symlink is atomically replaced by one to the mapping.\n" +
			"Prints JSON with \"mapped\", the /dev/mapper path.",
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) > 1 || (len(a) == 0 && link == "") {
				return usageError{errors.New("attach needs DEVICE or --link")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			dev, err := attachDevice(a, link)
			if err != nil {
				return err
			}
			h, err := o.host()
			if err != nil {
				return err
			}
			h.NoRekey = noRekey
			if name == "" {
				name = mappingName(cmd, h, link, dev)
			}
			c, err := o.client(cmd, ref)
			if err != nil {
				return err
			}
			defer c.Close()
			rec, source, err := o.diskRecord(cmd, c, ref, flags)
			if err != nil {
				return err
			}
			s, err := c.Fetch(cmd.Context(), ref)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := h.Attach(cmd.Context(), dev, name, s, rec, oo)
			if err != nil {
				return err
			}
			if res.RekeyErr != nil {
				o.warn("device unlocked with the legacy passphrase, but re-keying failed: %v", res.RekeyErr)
			}
			out := map[string]any{"device": dev, "name": name, "mapped": res.Mapped, "format": rec.Format,
				"cipher": rec.Cipher, "key_size": rec.KeySize, "record": source, "formatted": res.Formatted,
				"legacy": res.Legacy, "rekeyed": res.Rekeyed}
			if link != "" {
				if err := replaceSymlink(res.Mapped, link); err != nil {
					return fmt.Errorf("mapping %s is open, but --link: %w", res.Mapped, err)
				}
				out["link"] = link
			}
			return o.print(out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "secret reference")
	f.StringVar(&link, "link", "", "device symlink to re-point at the mapping (os-brick's device_path)")
	f.StringVar(&name, "name", "", "mapping name (default crypt-BASENAME of --link or DEVICE)")
	f.StringVar(&flags.Format, "type", "", "override the recorded format: luks1, luks2 or plain")
	f.StringVar(&flags.Cipher, "cipher", "", "override the recorded cipher")
	f.IntVar(&flags.KeySize, "key-size", 0, "override the recorded key size in bits")
	f.BoolVar(&oo.AllowDiscards, "allow-discards", false, "pass discards (TRIM) through")
	f.BoolVar(&noRekey, "no-rekey", false, "leave a legacy keyslot in place")
	o.profileFlag(cmd)
	return cmd
}

func detachCmd(o *options) *cobra.Command {
	var link string
	cmd := &cobra.Command{
		Use:   "detach [NAME] [--link PATH]",
		Short: "Close the mapping (succeeds if it is not open; exit 8 while it is in use)",
		Args:  nameOrLink(&link),
		RunE: func(cmd *cobra.Command, a []string) error {
			h, err := o.host()
			if err != nil {
				return err
			}
			name := nameArg(cmd, h, a, link)
			if err := h.Close(cmd.Context(), name); err != nil {
				if errors.Is(err, cryptsetup.ErrBusy) {
					return fmt.Errorf("/dev/mapper/%s is still in use (a VM or process holds it open); stop the user first: %w", name, err)
				}
				return err
			}
			return o.print(map[string]any{"name": name, "closed": true})
		},
	}
	cmd.Flags().StringVar(&link, "link", "", "the device symlink attach was given; names the mapping crypt-BASENAME")
	return cmd
}

func extendCmd(o *options) *cobra.Command {
	var ref, link string
	cmd := &cobra.Command{
		Use:   "extend [NAME] --ref REF [--link PATH]",
		Short: "Grow the mapping to fill its grown device; prints the new size (os-brick's extend)",
		Args:  nameOrLink(&link),
		RunE: func(cmd *cobra.Command, a []string) error {
			h, err := o.host()
			if err != nil {
				return err
			}
			name := nameArg(cmd, h, a, link)
			s, err := o.fetchSecret(cmd, ref)
			if err != nil {
				return err
			}
			defer s.Close()
			size, err := h.Extend(cmd.Context(), name, s)
			if err != nil {
				return err
			}
			return o.print(map[string]any{"name": name, "mapped": "/dev/mapper/" + name, "size": size})
		},
	}
	cmd.Flags().StringVar(&ref, "ref", "", "secret reference")
	cmd.Flags().StringVar(&link, "link", "", "the device symlink attach was given; names the mapping crypt-BASENAME")
	return cmd
}

// diskRecord is the key manager's record, overridden field by field by the
// flags the operator set, with a warning for each disagreement. Without a
// record (KMIP, or a secret created without one) the flags and then the
// defaults apply, also with a warning.
func (o *options) diskRecord(cmd *cobra.Command, c *fetch.Client, ref string, flags hostlib.DiskRecord) (hostlib.DiskRecord, string, error) {
	var rec hostlib.DiskRecord
	source := "key manager"
	if r, _ := fetch.ParseRef(ref); r.Proto == fetch.ProtoKMIP {
		source = ""
	} else {
		got, err := c.Record(cmd.Context(), ref)
		if err != nil {
			return rec, "", err
		}
		if got == nil {
			source = ""
		} else {
			rec = *got
		}
	}
	if source == "" {
		source = "flags"
		o.warn("the key manager keeps no disk record for %s: using --type/--cipher/--key-size or the defaults", ref)
	}
	fl := cmd.Flags()
	override := func(flag string, set func(), recorded, given any) {
		if !fl.Changed(flag) {
			return
		}
		if source == "key manager" && recorded != given {
			o.warn("--%s %v overrides the key manager's record (%v)", flag, given, recorded)
		}
		set()
	}
	override("type", func() { rec.Format = strings.ToLower(flags.Format) }, rec.Format, flags.Format)
	override("cipher", func() { rec.Cipher = flags.Cipher }, rec.Cipher, flags.Cipher)
	override("key-size", func() { rec.KeySize = flags.KeySize }, rec.KeySize, flags.KeySize)
	if rec.Format == "" {
		rec.Format = hostlib.FormatLUKS1
	}
	if err := rec.Validate(); err != nil {
		return rec, "", usageError{err}
	}
	return rec, source, nil
}

func attachDevice(a []string, link string) (string, error) {
	if len(a) == 1 {
		return a[0], nil
	}
	dev, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("--link: %w", err)
	}
	return dev, nil
}

// mappingName is os-brick's: crypt- and the base name of the connector's
// path, so a host that switches between os-brick and keywarden-host finds
// the same mappings. Like os-brick, a mapping still open under the bare base
// name (what older Nova called it) is used, so a rolling upgrade can detach
// volumes attached before it.
func mappingName(cmd *cobra.Command, h *hostlib.Host, link, dev string) string {
	if link == "" {
		return "crypt-" + filepath.Base(dev)
	}
	old := filepath.Base(link)
	if on, err := h.Cryptsetup.Active(cmd.Context(), old); err == nil && on {
		return old
	}
	return "crypt-" + old
}

func nameOrLink(link *string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if (len(a) == 1) == (*link != "") || len(a) > 1 {
			return usageError{errors.New("give NAME or --link, not both")}
		}
		return nil
	}
}

func nameArg(cmd *cobra.Command, h *hostlib.Host, a []string, link string) string {
	if len(a) == 1 {
		return a[0]
	}
	return mappingName(cmd, h, link, "")
}

// replaceSymlink points link at target with a rename, so readers see the
// old link or the new one, never none (what ln -sf does in two steps).
func replaceSymlink(target, link string) error {
	tmp := link + ".kw-tmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
