package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keywarden/keywarden/hostlib"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
	"github.com/spf13/cobra"
)

func imageCreateCmd(o *options) *cobra.Command {
	var ref, size string
	var co qemuimg.CreateOptions
	cmd := &cobra.Command{
		Use:   "image-create PATH --ref REF --format qcow2|luks --size SIZE",
		Short: "Create a qcow2+LUKS or raw LUKS image",
		Args:  args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			n, err := parseSize(size)
			if err != nil {
				return usageError{err}
			}
			co.SizeBytes = n
			h, err := o.host()
			if err != nil {
				return err
			}
			s, err := o.fetchSecret(cmd, ref)
			if err != nil {
				return err
			}
			defer s.Close()
			creator, err := h.CreateImage(cmd.Context(), a[0], s, co)
			if err != nil {
				return err
			}
			return o.print(map[string]any{"path": a[0], "format": co.Format, "size": n, "created_by": creator})
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "secret reference")
	f.StringVar(&co.Format, "format", qemuimg.QCOW2, "qcow2 (qcow2+LUKS) or luks (raw LUKS)")
	f.StringVar(&size, "size", "", "virtual (decrypted) size: bytes or with K, M, G, T suffix")
	f.IntVar(&co.IterTimeMS, "iter-time", 0, "qemu-img PBKDF time in ms (default: from the profile)")
	o.profileFlag(cmd)
	return cmd
}

func imageConvertCmd(o *options) *cobra.Command {
	var ref, dstRef string
	var src, dst hostlib.ImageSpec
	var co qemuimg.ConvertOptions
	var progress bool
	cmd := &cobra.Command{
		Use:   "image-convert SRC DST --ref REF [--dst-ref REF]",
		Short: "Convert an encrypted image (qcow2+LUKS → raw LUKS by default) under the same or another secret",
		Args:  args(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			src.Path, dst.Path = a[0], a[1]
			h, err := o.host()
			if err != nil {
				return err
			}
			if src.Secret, err = o.fetchSecret(cmd, ref); err != nil {
				return err
			}
			defer src.Secret.Close()
			if dstRef != "" {
				if dst.Secret, err = o.fetchSecret(cmd, dstRef); err != nil {
					return err
				}
				defer dst.Secret.Close()
			}
			if progress {
				co.Progress = func(p float64) { fmt.Fprintf(o.stderr, "progress %.2f%%\n", p) }
			}
			res, err := h.ConvertImage(cmd.Context(), src, dst, co)
			if err != nil {
				return err
			}
			if res.SourceLegacy {
				o.warn("the source image only opened with the legacy passphrase")
			}
			return o.print(res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "source secret reference")
	f.StringVar(&dstRef, "dst-ref", "", "target secret reference (default: the source's)")
	f.StringVar(&src.Format, "src-format", "", "qcow2 or luks (default: probe)")
	f.StringVar(&dst.Format, "dst-format", qemuimg.LUKS, "luks (raw LUKS) or qcow2")
	f.BoolVar(&co.TargetExists, "target-exists", false, "write into an existing LUKS image or formatted volume")
	f.BoolVar(&progress, "progress", false, "report progress on stderr")
	o.profileFlag(cmd)
	return cmd
}

func imageInfoCmd(o *options) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "image-info PATH",
		Short: "Show an encrypted image's format and decrypted size (os_decrypt_size); needs no secret",
		Args:  args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			h, err := o.host()
			if err != nil {
				return err
			}
			info, err := h.QemuImg.Info(cmd.Context(), a[0], format)
			if err != nil {
				return err
			}
			out := map[string]any{"path": a[0], "format": info.Format, "virtual_size": info.VirtualSize,
				"encrypted": info.Encrypted, "cipher": info.Cipher}
			if info.Cipher != "" {
				out["os_decrypt_size"] = info.VirtualSize
			}
			return o.print(out)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "qcow2 or luks (default: probe)")
	return cmd
}

// parseSize reads 1073741824, 1G, 512M, 64k (binary multiples, as qemu-img).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("--size is required")
	}
	mult := int64(1)
	if i := strings.IndexAny(strings.ToUpper(s[len(s)-1:]), "KMGT"); i == 0 {
		mult = int64(1) << (10 * (1 + strings.Index("KMGT", strings.ToUpper(s[len(s)-1:]))))
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive number with an optional K, M, G or T suffix", s)
	}
	return n * mult, nil
}
