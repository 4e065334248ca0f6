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
	flags   serverFlags
	file    string
	keyFile string
}

var auditVerifyCmd = &cobra.Command{
	Use:   "verify",
	Short: "Check that no audit record was removed, reordered or changed",
	Long: `Read every file of the audit log, the rotated ones (audit.log.<first>-<last>)
oldest first and then audit.log, and check each record's HMAC under the audit
key, that it names the hash of the record before it (across files too), that
sequence numbers have no gaps, that each rotated file holds the records its
name says, and that the log reaches the last record its head file saw (so a
log cut short at its end is caught too). Without the key nobody can forge a
chain that passes. Exits 1 at the first break, naming its file and line, or
when the key file is not the one that chains the log.

The oldest rotated files may be archived away: the report then says which
record the remaining set starts at. It only reads, so it can run while the
server appends and rotates.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		path, keyFile := auditVerifyOpts.file, auditVerifyOpts.keyFile
		if path == "" || keyFile == "" {
			cfg, err := auditVerifyOpts.flags.resolve(cmd)
			if err != nil {
				return err
			}
			a := cfg.Audit
			if path == "" {
				path = a.Path
			}
			if keyFile == "" {
				keyFile = a.KeyFile
			}
		}
		key, err := audit.LoadKey(keyFile)
		if err != nil {
			return err
		}
		rep, err := audit.Verify(path, key)
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			where, verdict, why := path, "TAMPERED", ve.Reason
			if ve.File != "" {
				where = ve.File
			}
			if ve.WrongKey {
				verdict = "WRONG KEY (" + keyFile + ")"
			}
			if ve.Line > 0 {
				why = fmt.Sprintf("line %d (record %d): %s", ve.Line, ve.Seq, ve.Reason)
			}
			return fmt.Errorf("%s: %s: %s", where, verdict, why)
		}
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		files := "1 file"
		if rep.Files != 1 {
			files = fmt.Sprintf("%d files", rep.Files)
		}
		fmt.Fprintf(out, "%s: OK, %d records in %s, chain intact up to record %d (%s) under audit key %s\n",
			path, rep.Records, files, rep.LastSeq, rep.LastHash, rep.KeyID)
		if rep.HeadChecked {
			fmt.Fprintln(out, "  head file agrees: nothing was cut from the end")
		} else {
			fmt.Fprintln(out, "  no head file: a log cut short at its end would not be noticed")
		}
		if rep.FirstSeq > 1 {
			fmt.Fprintf(out, "  note: the files start at record %d: records 1 to %d were archived or removed and are not checked\n", rep.FirstSeq, rep.FirstSeq-1)
		}
		if rep.Unkeyed > 0 {
			fmt.Fprintf(out, "  note: the first %d records predate the audit key: they are sealed by the keyed record after them, not keyed themselves\n", rep.Unkeyed)
		}
		if rep.Dropped > 0 {
			fmt.Fprintf(out, "  note: the server recorded dropping %d records (audit queue full or a write failed)\n", rep.Dropped)
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
	f.StringVar(&auditVerifyOpts.file, "file", "", "audit log to check (default: the config's, <data-dir>/audit.log); rotated files are found next to it")
	f.StringVar(&auditVerifyOpts.keyFile, "key-file", "", "audit key (default: the config's, <data-dir>/audit.key)")
	f.StringVar(&auditVerifyOpts.flags.configFile, "config", "", "YAML config file (the server's)")
	f.StringVar(&auditVerifyOpts.flags.dataDir, "data-dir", defaultDataDir(), "the server's data dir")
	auditCmd.AddCommand(auditVerifyCmd)
	rootCmd.AddCommand(auditCmd)
}
