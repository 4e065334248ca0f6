package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	osuser "os/user"
	"path/filepath"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/audit"
	"github.com/spf13/cobra"
)

var rotateFlags serverFlags

// rotateCmd replaces the root key: a new key is made beside the old one
// (root.key.next), every project KEK is re-wrapped under it, and only then
// does it replace root.key. Interrupted, it is finished by running it again.
var rotateCmd = &cobra.Command{
	Use:   "rotate-root-key",
	Short: "Replace the root key, re-wrapping every project key (payloads are not touched); stop the server first when the store is bolt",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		cfg, err := rotateFlags.resolve(cmd)
		if err != nil {
			return err
		}
		if cfg.MasterKey.Type == "transit" {
			return fmt.Errorf("the master key is the Vault Transit key %q: rotate it in Vault "+
				"(vault write -f %s/keys/%s/rotate); project keys wrapped by its older versions keep working",
				cfg.MasterKey.Transit.Key, transitMount(cfg), cfg.MasterKey.Transit.Key)
		}
		oldKey, err := crypto.LoadRootKey(cfg.RootKey)
		if err != nil {
			return err
		}
		defer oldKey.Close()
		next := cfg.RootKey + ".next"
		newKey, _, err := crypto.LoadOrCreateRootKey(next)
		if err != nil {
			return err
		}
		defer newKey.Close()
		if err := auditOperator(cmd.Context(), cfg, "root_key_rotate", "root key "+oldKey.ID()+" → "+newKey.ID()); err != nil {
			return err
		}
		st, err := openStore(cfg, slog.Default())
		if err != nil {
			return err
		}
		n, err := kms.RotateMaster(context.Background(), st, oldKey, newKey)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%w (run rotate-root-key again to finish; %s holds the new key)", err, next)
		}
		if err := os.Rename(next, cfg.RootKey); err != nil {
			return err
		}
		if d, err := os.Open(filepath.Dir(cfg.RootKey)); err == nil {
			d.Sync()
			d.Close()
		}
		fmt.Fprintf(cmd.OutOrStdout(), "re-wrapped %d project keys; root key %s → %s\n", n, oldKey.ID(), newKey.ID())
		return nil
	},
}

var migrateFlags serverFlags

// migrateCmd moves the project KEKs from the local root key to the Vault
// Transit key the config names. Wrapped KEKs record which master wrapped
// them, so the move can be interrupted and run again; root.key is left in
// place for the operator to archive once the server runs on Transit.
var migrateCmd = &cobra.Command{
	Use:   "migrate-master-key",
	Short: "Re-wrap every project key from the local root key to the configured master_key.transit (payloads are not touched); stop the server first when the store is bolt",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		cfg, err := migrateFlags.resolve(cmd)
		if err != nil {
			return err
		}
		if cfg.MasterKey.Type != "transit" {
			return fmt.Errorf("master_key.type is %q: set it to transit (and master_key.transit) in --config first", cfg.MasterKey.Type)
		}
		oldKey, err := crypto.LoadRootKey(cfg.RootKey)
		if err != nil {
			return err
		}
		defer oldKey.Close()
		newKey, err := openTransit(cfg)
		if err != nil {
			return err
		}
		if err := auditOperator(cmd.Context(), cfg, "master_key_migrate", "master key "+oldKey.ID()+" → "+newKey.ID()); err != nil {
			return err
		}
		st, err := openStore(cfg, slog.Default())
		if err != nil {
			return err
		}
		n, err := kms.RotateMaster(cmd.Context(), st, oldKey, newKey)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%w (run migrate-master-key again to finish)", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "re-wrapped %d project keys; master key %s → %s\n"+
			"%s is no longer used: archive it offline, then remove it\n", n, oldKey.ID(), newKey.ID(), cfg.RootKey)
		return nil
	},
}

func transitMount(cfg config) string {
	if m := cfg.MasterKey.Transit.Mount; m != "" {
		return m
	}
	return "transit"
}

func init() {
	rotateFlags.register(rotateCmd)
	migrateFlags.register(migrateCmd)
	rootCmd.AddCommand(rotateCmd, migrateCmd)
}

// auditOperator puts an operator's change on the audit trail, durably,
// before it is made: a key rotation is a state change like any other. The
// log is locked by a running server on this node, which is then named.
func auditOperator(ctx context.Context, cfg config, action, detail string) error {
	l, err := audit.Open(cfg.Audit.Path, cfg.Audit.options(slog.New(slog.DiscardHandler)))
	if err != nil {
		return fmt.Errorf("cannot write the audit trail, so nothing was changed (stop the server that holds %s): %w", cfg.Audit.Path, err)
	}
	user := "operator"
	if u, err := osuser.Current(); err == nil {
		user = u.Username
	}
	rec := kms.AuditRecord{Time: time.Now().UTC(), Project: "keywarden", User: user, Source: "local",
		Protocol: "cli", Action: action, Outcome: "ok", Detail: detail}
	err = l.Commit(ctx, rec)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write the audit trail, so nothing was changed: %w", err)
	}
	return nil
}
