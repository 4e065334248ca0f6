// Command keywarden-host is the hypervisor side of Keywarden: it fetches a
// disk's secret with the host's own credentials and does the LUKS work —
// probe, fetch, format, open, close, attach, detach, extend, libvirt-secret,
// verify, image-create, image-convert, image-info. Results go to stdout as JSON, diagnostics to stderr, and the
// exit code tells scripts what went wrong (see exitcode.go).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := &options{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "keywarden-host",
		Short:         "Fetch disk secrets from Keywarden and do the LUKS work on this host",
		Long:          "Fetch disk secrets from Keywarden and do the LUKS work on this host.\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	o.register(root)
	root.AddCommand(probeCmd(o), fetchCmd(o), formatCmd(o), openCmd(o), closeCmd(o), verifyCmd(o),
		imageCreateCmd(o), imageConvertCmd(o), imageInfoCmd(o),
		attachCmd(o), detachCmd(o), extendCmd(o), libvirtSecretCmd(o))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(stderr, "keywarden-host: %v\n", err)
	return code
}

// args wraps cobra's argument checks so a wrong count exits with exitUsage.
func args(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := cobra.ExactArgs(n)(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}
