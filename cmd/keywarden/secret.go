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
	"github.com/keywarden/keywarden/kms/store/bolt"
)

var secretCmd = &cobra.Command{
	Use:   "secret",
	Short: "Operator commands on the stored secrets (all projects)",
}

type orphanOptions struct {
	flags     serverFlags
	grace     time.Duration
	olderThan time.Duration
	collect   bool
	dryRun    bool
	jsonOut   bool
	auditLog  string
	url       string
	token     string
	caFile    string
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

The command opens the store directly when it can (server stopped, or the etcd
store; give it its own --audit-log if a server on this host uses the default
one). When a running server holds the embedded store, it asks that server
instead (GET or DELETE /v1/orphans at the config's rest.addr, or --url), with
--token or a short-lived key-manager:service-admin token it mints from the data
dir's token key.

A server can also collect on its own schedule: orphans.collect_every in its
config.`,
	Args: cobra.NoArgs,
	RunE: runOrphans,
}

var orphanOpts orphanOptions

func init() {
	f := orphansCmd.Flags()
	f.StringVar(&orphanOpts.flags.configFile, "config", "", "YAML config file (the server's)")
	f.StringVar(&orphanOpts.flags.dataDir, "data-dir", defaultDataDir(), "the server's data dir")
	f.StringVar(&orphanOpts.flags.restAddr, "rest-addr", "127.0.0.1:9311", "the server's REST address, asked when it holds the store")
	f.DurationVar(&orphanOpts.grace, "grace", time.Hour, "spare on_last_consumer secrets changed more recently than this (a consumer may be on its way)")
	f.DurationVar(&orphanOpts.olderThan, "older-than", 0, "also list secrets of any policy with no consumer unchanged for this long (0: off)")
	f.BoolVar(&orphanOpts.collect, "collect", false, "destroy the orphans (see --dry-run)")
	f.BoolVar(&orphanOpts.dryRun, "dry-run", true, "with --collect, only say what would be destroyed; --dry-run=false destroys")
	f.BoolVar(&orphanOpts.jsonOut, "json", false, "print JSON instead of a table")
	f.StringVar(&orphanOpts.auditLog, "audit-log", "", "audit log to append to (default: the config's)")
	f.StringVar(&orphanOpts.url, "url", "", "ask this running server instead of opening the store (default when the store is locked: http://<rest.addr>)")
	f.StringVar(&orphanOpts.caFile, "ca-file", "", "CA certificate(s) to trust for an https server, e.g. <data-dir>/kmip/ca.pem")
	f.StringVar(&orphanOpts.token, "token", "", "X-Auth-Token for the server, with role key-manager:service-admin (default: minted from the data dir's token key)")
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
	destroy := o.collect && !o.dryRun
	var rows []orphanJSON
	if o.url != "" {
		rows, err = remoteOrphans(cmd.Context(), cfg, o, destroy)
	} else {
		rows, err = localOrphans(cmd, cfg, o, destroy)
	}
	if rows == nil && err != nil {
		return err
	}
	printOrphans(cmd.OutOrStdout(), rows, o.jsonOut)
	if err != nil {
		return fmt.Errorf("collecting orphans: %w", err)
	}
	if o.jsonOut {
		return nil
	}
	w := cmd.ErrOrStderr()
	switch {
	case !o.collect:
		fmt.Fprintf(w, "%d orphaned secrets; --collect to destroy them\n", len(rows))
	case o.dryRun:
		fmt.Fprintf(w, "dry run: would destroy %d secrets; add --dry-run=false to destroy them\n", len(rows))
	default:
		n := 0
		for _, r := range rows {
			if r.Destroyed {
				n++
			}
		}
		fmt.Fprintf(w, "destroyed %d of %d orphaned secrets (the rest gained a consumer or went meanwhile)\n", n, len(rows))
	}
	return nil
}

// localOrphans opens the store itself; a store held by a running server
// sends the question to that server.
func localOrphans(cmd *cobra.Command, cfg config, o orphanOptions, destroy bool) ([]orphanJSON, error) {
	st, err := openState(cfg, newLogger(cfg.LogLevel))
	if errors.Is(err, bolt.ErrLocked) {
		fmt.Fprintf(cmd.ErrOrStderr(), "store in use by a running server: asking it at %s\n", serverURL(cfg))
		return remoteOrphans(cmd.Context(), cfg, o, destroy)
	}
	if err != nil {
		return nil, err
	}
	defer st.close()
	rule := consumers.OrphanRule{Grace: o.grace, OlderThan: o.olderThan}
	found, ids, err := st.svc.SweepOrphans(cmd.Context(), rule, destroy)
	if found == nil && err != nil {
		return nil, err
	}
	destroyed := map[string]bool{}
	for _, id := range ids {
		destroyed[id] = true
	}
	rows := make([]orphanJSON, 0, len(found))
	for _, o := range found {
		s := o.Secret
		rows = append(rows, orphanJSON{ID: s.ID, Project: s.Project, Name: s.Name, Type: string(s.Type),
			DeletionPolicy: string(s.EffectivePolicy()), Updated: s.Updated, Reason: o.Reason, Destroyed: destroyed[s.ID]})
	}
	return rows, err
}

func printOrphans(out io.Writer, rows []orphanJSON, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(rows)
		return
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROJECT\tTYPE\tPOLICY\tUPDATED\tREASON\tDESTROYED")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", r.ID, r.Project, r.Type, r.DeletionPolicy,
			r.Updated.UTC().Format(time.RFC3339), r.Reason, r.Destroyed)
	}
	tw.Flush()
}
