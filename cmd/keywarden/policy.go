package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/kms"
)

var policyOpts struct{ flags serverFlags }

var policyCmd = &cobra.Command{
	Use:   "policy",
	Short: "Print the authorization table in force (docs/POLICY.md is its default)",
	Long: `Print, as Markdown, every rule of the authorization policy with the text in
force: the defaults with the config file's policy: overrides applied. An
override that does not parse is reported here as it would stop the server.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		cfg, err := policyOpts.flags.resolve(cmd)
		if err != nil {
			return err
		}
		p, err := kms.NewPolicy(cfg.Policy)
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(cmd.OutOrStdout(), p.PolicyDoc())
		return err
	},
}

func init() {
	policyOpts.flags.register(policyCmd)
	rootCmd.AddCommand(policyCmd)
}
