package main

import (
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/probe"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
	"github.com/spf13/cobra"
)

func probeCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "probe",
		Short: "Report what this host supports (JSON; encryption_supported is the host's answer)",
		Long: "Report cryptsetup and qemu-img versions, LUKS1/LUKS2/plain support, QEMU-native LUKS and\n" +
			"device-mapper, found by trying them on scratch files. Always exits 0 when the report was made.",
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := probe.Prober{Cryptsetup: cryptsetup.New(o.cryptsetupBin), QemuImg: qemuimg.New(o.qemuImgBin)}
			return o.print(p.Run(cmd.Context()))
		},
	}
}
