package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
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
		st, err := openStore(cfg)
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

func init() {
	rotateFlags.register(rotateCmd)
	rootCmd.AddCommand(rotateCmd)
}
