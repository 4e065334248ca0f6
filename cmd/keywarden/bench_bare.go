package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/loadgen"
)

// benchBareCmd is the bare server `bench --baseline` measures, run by it as
// a child process (loadgen.BareServerArgs); not for people.
var benchBareCmd = &cobra.Command{
	Use:    "bare-server [--tls]",
	Short:  "The bare HTTP server of bench --baseline (started by bench)",
	Hidden: true,
	Args:   cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		withTLS, _ := cmd.Flags().GetBool("tls")
		return loadgen.ServeBare(os.Stdin, os.Stdout, withTLS)
	},
}

func init() {
	benchBareCmd.Flags().Bool("tls", false, "serve over TLS with a throw-away certificate (written to stdout)")
	benchCmd.AddCommand(benchBareCmd)
}
