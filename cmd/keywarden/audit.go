package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/kms/audit"
)

var auditCmd = &cobra.Command{
	Use:   "audit",
	Short: "Inspect the audit trail",
}

var auditVerifyOpts struct {
	flags serverFlags
	file  string
}

var auditVerifyCmd = &cobra.Command{
	Use:   "verify",
	Short: "Check that no audit record was removed, reordered or changed",
	Long: `Read the audit log from its first record and check each record's hash, that it
names the hash of the record before it, that sequence numbers have no gaps, and
that the log reaches the last record its head file saw (so a log cut short at
its end is caught too). Exits 1 at the first break, naming its line.

It only reads, so it can run while the server appends.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		path := auditVerifyOpts.file
		if path == "" {
			cfg, err := auditVerifyOpts.flags.resolve(cmd)
			if err != nil {
				return err
			}
			path = cfg.Audit.Path
		}
		rep, err := audit.Verify(path)
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			return fmt.Errorf("%s: TAMPERED: %w", path, err)
		}
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%s: OK, %d records, chain intact up to record %d (%s)\n", path, rep.Records, rep.LastSeq, rep.LastHash)
		if rep.HeadChecked {
			fmt.Fprintln(out, "  head file agrees: nothing was cut from the end")
		} else {
			fmt.Fprintln(out, "  no head file: a log cut short at its end would not be noticed")
		}
		if rep.Dropped > 0 {
			fmt.Fprintf(out, "  note: the server recorded dropping %d records (audit queue full)\n", rep.Dropped)
		}
		if rep.Recovered > 0 {
			fmt.Fprintf(out, "  note: %d torn records were cut off at restarts after a crash\n", rep.Recovered)
		}
		if rep.Partial {
			fmt.Fprintln(out, "  note: the last line is incomplete (being written, or the writer died)")
		}
		return nil
	},
}

func init() {
	f := auditVerifyCmd.Flags()
	f.StringVar(&auditVerifyOpts.file, "file", "", "audit log to check (default: the config's, <data-dir>/audit.log)")
	f.StringVar(&auditVerifyOpts.flags.configFile, "config", "", "YAML config file (the server's)")
	f.StringVar(&auditVerifyOpts.flags.dataDir, "data-dir", defaultDataDir(), "the server's data dir")
	auditCmd.AddCommand(auditVerifyCmd)
	rootCmd.AddCommand(auditCmd)
}
