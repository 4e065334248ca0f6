// Command keywarden is the Keywarden server and its admin CLI.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

var rootCmd = &cobra.Command{
	Use:           "keywarden",
	Short:         "Key manager for cloud disk encryption (Barbican v1 REST and KMIP)",
	SilenceUsage:  true,
	SilenceErrors: true,
}

var versionCmd = &cobra.Command{
	Use:   "version",
	Short: "Print the version",
	Args:  cobra.NoArgs,
	Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "keywarden", version) },
}

func init() { rootCmd.AddCommand(versionCmd) }

// defaultDataDir is where state lives when no --data-dir is given:
// $KEYWARDEN_DATA_DIR, /var/lib/keywarden for root, else the user's data dir.
func defaultDataDir() string {
	if d := os.Getenv("KEYWARDEN_DATA_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/keywarden"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "keywarden")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "keywarden-data"
	}
	return filepath.Join(home, ".local", "share", "keywarden")
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "keywarden:", err)
		os.Exit(1)
	}
}
