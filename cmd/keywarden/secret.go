package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

var secretCmd = &cobra.Command{
	Use:   "secret",
	Short: "Operator commands on the stored secrets (all projects)",
}

var orphanOpts struct {
	flags     serverFlags
	grace     time.Duration
	olderThan time.Duration
	collect   bool
	dryRun    bool
	jsonOut   bool
	auditLog  string
}

var orphansCmd = &cobra.Command{
	Use:   "orphans",
	Short: "List secrets nobody uses whose policy says they should be gone; --collect destroys them",
	Long: `List orphaned secrets across all projects: secrets with no consumer whose
deletion policy is on_last_consumer (their consumer was never registered, or the
caller died between creating the key and attaching the disk), and, with
--older-than, any secret with no consumer left unchanged that long.

--collect destroys them, but only as a dry run unless --dry-run=false is given.
Each secret is re-checked when it is destroyed: one that gained a consumer since
the listing is kept. Every destruction is written to the audit log.

The command opens the store directly. With the embedded store, stop the server
first (its file is locked); with etcd it can run next to the servers (give it
its own --audit-log if a server on this host uses the default one).`,
	Args: cobra.NoArgs,
	RunE: runOrphans,
}

func init() {
	f := orphansCmd.Flags()
	f.StringVar(&orphanOpts.flags.configFile, "config", "", "YAML config file (the server's)")
	f.StringVar(&orphanOpts.flags.dataDir, "data-dir", defaultDataDir(), "the server's data dir")
	f.DurationVar(&orphanOpts.grace, "grace", time.Hour, "spare on_last_consumer secrets changed more recently than this (a consumer may be on its way)")
	f.DurationVar(&orphanOpts.olderThan, "older-than", 0, "also list secrets of any policy with no consumer unchanged for this long (0: off)")
	f.BoolVar(&orphanOpts.collect, "collect", false, "destroy the orphans (see --dry-run)")
	f.BoolVar(&orphanOpts.dryRun, "dry-run", true, "with --collect, only say what would be destroyed; --dry-run=false destroys")
	f.BoolVar(&orphanOpts.jsonOut, "json", false, "print JSON instead of a table")
	f.StringVar(&orphanOpts.auditLog, "audit-log", "", "audit log to append to (default: the config's)")
	secretCmd.AddCommand(orphansCmd)
	rootCmd.AddCommand(secretCmd)
}

// orphanJSON is one orphan as --json prints it: metadata, never material.
type orphanJSON struct {
	ID             string    `json:"id"`
	Project        string    `json:"project"`
	Name           string    `json:"name,omitempty"`
	Type           string    `json:"secret_type"`
	DeletionPolicy string    `json:"deletion_policy"`
	Updated        time.Time `json:"updated"`
	Reason         string    `json:"reason"`
	Destroyed      bool      `json:"destroyed"`
}

func runOrphans(cmd *cobra.Command, _ []string) error {
	o := orphanOpts
	if o.grace < 0 || o.olderThan < 0 {
		return fmt.Errorf("--grace and --older-than must not be negative")
	}
	cfg, err := o.flags.resolve(cmd)
	if err != nil {
		return err
	}
	if o.auditLog != "" {
		cfg.Audit.Path = o.auditLog
	}
	st, err := openState(cfg, newLogger(cfg.LogLevel))
	if errors.Is(err, bolt.ErrLocked) {
		return fmt.Errorf("%w: stop the server first (or use the etcd store)", err)
	}
	if err != nil {
		return err
	}
	defer st.close()
	rule := consumers.OrphanRule{Grace: o.grace, OlderThan: o.olderThan}
	ctx := cmd.Context()
	found, err := st.svc.FindOrphans(ctx, rule)
	if err != nil {
		return err
	}
	destroyed := map[string]bool{}
	if o.collect && !o.dryRun && len(found) > 0 {
		ids, err := st.svc.CollectOrphans(ctx, rule, found)
		for _, id := range ids {
			destroyed[id] = true
		}
		if err != nil {
			printOrphans(cmd.OutOrStdout(), found, destroyed, o.jsonOut)
			return fmt.Errorf("collecting orphans: %w", err)
		}
	}
	printOrphans(cmd.OutOrStdout(), found, destroyed, o.jsonOut)
	if o.jsonOut {
		return nil
	}
	w := cmd.ErrOrStderr()
	switch {
	case !o.collect:
		fmt.Fprintf(w, "%d orphaned secrets; --collect to destroy them\n", len(found))
	case o.dryRun:
		fmt.Fprintf(w, "dry run: would destroy %d secrets; add --dry-run=false to destroy them\n", len(found))
	default:
		fmt.Fprintf(w, "destroyed %d of %d orphaned secrets (the rest gained a consumer or went meanwhile)\n", len(destroyed), len(found))
	}
	return nil
}

func printOrphans(out io.Writer, found []kms.Orphan, destroyed map[string]bool, asJSON bool) {
	if asJSON {
		list := make([]orphanJSON, 0, len(found))
		for _, o := range found {
			s := o.Secret
			list = append(list, orphanJSON{ID: s.ID, Project: s.Project, Name: s.Name, Type: string(s.Type),
				DeletionPolicy: string(s.EffectivePolicy()), Updated: s.Updated, Reason: o.Reason, Destroyed: destroyed[s.ID]})
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(list)
		return
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROJECT\tTYPE\tPOLICY\tUPDATED\tREASON\tDESTROYED")
	for _, o := range found {
		s := o.Secret
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", s.ID, s.Project, s.Type, s.EffectivePolicy(),
			s.Updated.UTC().Format(time.RFC3339), o.Reason, destroyed[s.ID])
	}
	tw.Flush()
}
