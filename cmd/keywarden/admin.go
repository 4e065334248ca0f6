package main

import (
	"errors"
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
	dataDir, project, user, roles, issuer, audience string
	ttl                                             time.Duration
}

var errNoUser = errors.New("--user is required: every token names its user, " +
	"and a private secret or an ACL grants access per user")

var tokenCmd = &cobra.Command{
	Use:   "token",
	Short: "Mint a development token (HS256, signed with the data dir's token key)",
	Long: `Mint a development token: an HS256 JWT signed with the data dir's token key,
for one user of one project. The server accepts it while it verifies with that
key (always when auth.jwt.public_keys is empty, else only with
auth.jwt.allow_hmac: true), when --issuer and --audience match the server's
auth.jwt.issuer and audience (if set), and when --ttl is within its
auth.jwt.max_lifetime (default 24h).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		o := tokenOpts
		if o.project == "" {
			return fmt.Errorf("--project is required")
		}
		if strings.TrimSpace(o.user) == "" {
			return errNoUser
		}
		id := kms.Identity{Project: o.project, User: strings.TrimSpace(o.user)}
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
		key, _, err := loadOrCreateSecretFile(cfg.Auth.JWT.HMACSecretFile)
		if err != nil {
			return err
		}
		defer clear(key)
		t, err := token.MintFor(key, id, o.ttl, o.issuer, o.audience)
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
	f.StringVar(&tokenOpts.user, "user", "", "user id (required)")
	f.StringVar(&tokenOpts.roles, "roles", "admin", "comma-separated roles: admin, creator, observer, audit, key-manager:service-admin")
	f.DurationVar(&tokenOpts.ttl, "ttl", time.Hour, "validity (the server refuses more than its auth.jwt.max_lifetime, default 24h)")
	f.StringVar(&tokenOpts.issuer, "issuer", token.DevIssuer, "iss claim (the server's auth.jwt.issuer when it sets one)")
	f.StringVar(&tokenOpts.audience, "audience", "", "aud claim (the server's auth.jwt.audience when it sets one)")
	rootCmd.AddCommand(initCmd, tokenCmd)
}
