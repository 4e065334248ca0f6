package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

// The XML Nova's libvirt driver writes for a disk libvirt (QEMU) decrypts
// itself: a <secret> holding the LUKS passphrase, and the disk's
// <encryption format='luks'> naming it. Attribute and element order are
// Nova's (LibvirtConfigSecret, LibvirtConfigGuestDiskEncryption).

type libvirtSecret struct {
	XMLName   xml.Name `xml:"secret"`
	Ephemeral string   `xml:"ephemeral,attr"`
	Private   string   `xml:"private,attr"`
	UUID      string   `xml:"uuid"`
	Usage     struct {
		Type   string `xml:"type,attr"`
		Volume string `xml:"volume"`
	} `xml:"usage"`
}

type libvirtEncryption struct {
	XMLName xml.Name `xml:"encryption"`
	Format  string   `xml:"format,attr"`
	Secret  struct {
		Type string `xml:"type,attr"`
		UUID string `xml:"uuid,attr"`
	} `xml:"secret"`
}

func libvirtSecretCmd(o *options) *cobra.Command {
	var ref, id, usage string
	fd := -1
	cmd := &cobra.Command{
		Use:   "libvirt-secret --ref REF --usage VOLUME [--uuid UUID] [--value-fd N]",
		Short: "Print the libvirt <secret> and the disk's <encryption format='luks'> XML; the value goes to a pipe",
		Long: "Print, as JSON, the <secret> XML to give `virsh secret-define` and the <encryption format='luks'>\n" +
			"element for the disk, as Nova writes them (usage type 'volume'). The secret's value — the LUKS\n" +
			"passphrase — is never printed and never in argv: --value-fd N writes it to an inherited pipe,\n" +
			"--value-fd 1 to stdout instead of the JSON, for `virsh secret-set-value UUID --file /dev/stdin --plain`.\n" +
			"libvirt's schema wants the volume as an absolute path; Nova puts the Cinder volume id there, which\n" +
			"libvirtd accepts but virt-xml-validate does not.",
		Args: args(0),
		RunE: func(cmd *cobra.Command, a []string) error {
			if usage == "" {
				return usageError{errors.New("--usage is required (the disk's path, or Nova's volume id)")}
			}
			if id == "" {
				id = uuid.NewString()
			} else if _, err := uuid.Parse(id); err != nil {
				return usageError{fmt.Errorf("--uuid: %w", err)}
			}
			if !filepath.IsAbs(usage) {
				o.warn("--usage %q is not an absolute path: libvirtd takes it (Nova writes volume ids), virt-xml-validate does not", usage)
			}
			s, err := o.fetchSecret(cmd, ref)
			if err != nil {
				return err
			}
			defer s.Close()
			if tookStdout, err := handOver(fd, s); err != nil || tookStdout {
				return err
			}
			sec := libvirtSecret{Ephemeral: "no", Private: "no", UUID: id}
			sec.Usage.Type, sec.Usage.Volume = "volume", usage
			enc := libvirtEncryption{Format: "luks"}
			enc.Secret.Type, enc.Secret.UUID = "passphrase", id
			secXML, err := xml.MarshalIndent(sec, "", "  ")
			if err != nil {
				return err
			}
			encXML, err := xml.MarshalIndent(enc, "", "  ")
			if err != nil {
				return err
			}
			return o.print(map[string]any{"uuid": id, "secret_xml": string(secXML), "encryption_xml": string(encXML), "secret": s})
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "secret reference")
	f.StringVar(&id, "uuid", "", "libvirt secret UUID (default: a new one)")
	f.StringVar(&usage, "usage", "", "the <usage type='volume'> value: the disk's path (or Nova's volume id)")
	f.IntVar(&fd, "value-fd", -1, "write the secret's value (the LUKS passphrase, no newline) to this pipe")
	return cmd
}
