package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/token"
	"github.com/spf13/cobra"
)

var initFlags serverFlags

var initCmd = &cobra.Command{
	Use:   "init",
	Short: "Create the data dir, root key (or check the Transit master key), token key and store, then exit",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		cfg, err := initFlags.resolve(cmd)
		if err != nil {
			return err
		}
		st, err := openState(cfg, newLogger(cfg.LogLevel))
		if err != nil {
			return err
		}
		st.close()
		fmt.Fprintf(cmd.OutOrStdout(), "initialized %s\n  store       %s\n  master key  %s\n",
			cfg.DataDir, cfg.Store.Path, st.master.ID())
		return nil
	},
}

var tokenOpts struct {
	dataDir, project, user, roles string
	ttl                           time.Duration
}

var tokenCmd = &cobra.Command{
	Use:   "token",
	Short: "Mint a development token (HS256, signed with the data dir's token key)",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		o := tokenOpts
		if o.project == "" {
			return fmt.Errorf("--project is required")
		}
		id := kms.Identity{Project: o.project, User: o.user, Source: "local"}
		for r := range strings.SplitSeq(o.roles, ",") {
			if r = strings.TrimSpace(r); r != "" {
				id.Roles = append(id.Roles, r)
			}
		}
		if err := id.Validate(); err != nil {
			return fmt.Errorf("--project %q: %w", o.project, err)
		}
		if o.ttl <= 0 {
			return fmt.Errorf("--ttl must be positive")
		}
		cfg := defaultConfig()
		cfg.DataDir = o.dataDir
		if err := cfg.finish(); err != nil {
			return err
		}
		key, _, err := loadOrCreateSecretFile(cfg.Auth.HMACSecretFile)
		if err != nil {
			return err
		}
		t, err := token.Mint(key, id, o.ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), t)
		return nil
	},
}

func init() {
	initFlags.register(initCmd)
	f := tokenCmd.Flags()
	f.StringVar(&tokenOpts.dataDir, "data-dir", defaultDataDir(), "data dir holding token.key")
	f.StringVar(&tokenOpts.project, "project", "", "project id (required)")
	f.StringVar(&tokenOpts.user, "user", "dev", "user id")
	f.StringVar(&tokenOpts.roles, "roles", "admin", "comma-separated roles: admin, creator, observer, audit, key-manager:service-admin")
	f.DurationVar(&tokenOpts.ttl, "ttl", time.Hour, "validity")
	rootCmd.AddCommand(initCmd, tokenCmd)
}
