package main

import (
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/kmip/pki"
	"github.com/keywarden/keywarden/kms"
)

// kmipCADir is where the KMIP CA and server certificate live.
func kmipCADir(dataDir string) string { return filepath.Join(dataDir, "kmip") }

var pkiCmd = &cobra.Command{
	Use:   "pki",
	Short: "The built-in certificate authority of the KMIP endpoint",
}

var pkiInitFlags struct{ dataDir, keyType string }

var initCACmd = &cobra.Command{
	Use:   "init --data-dir D [--key-type rsa|ecdsa]",
	Short: "Create the built-in KMIP CA, choosing its key type",
	Long: `Create Keywarden's KMIP CA in <data-dir>/kmip: RSA 2048 (the default, what every
KMIP client verifies) or ECDSA P-384 signing with ECDSA-SHA384, the chain the Suite B TLS
profiles (kmip.tls_profile suiteb-128 / suiteb-192) need. An existing CA is kept as it is
and its key type printed; the server creates an RSA CA on first start unless this ran
first (or kmip.ca_key_type / a Suite B tls_profile says otherwise).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		f := pkiInitFlags
		ca, created, err := pki.LoadOrCreateWith(kmipCADir(f.dataDir), pki.Options{CAKeyType: f.keyType})
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if !created {
			fmt.Fprintf(out, "the KMIP CA in %s exists already (%s); kept\n", ca.Dir(), ca.KeyType())
			return nil
		}
		fmt.Fprintf(out, "created the KMIP CA (%s) in %s\n", ca.KeyType(), ca.Dir())
		return nil
	},
}

var issueClient struct {
	project, user, out, dataDir, keyType string
	roles                                []string
	days                                 int
}

var issueClientCmd = &cobra.Command{
	Use:   "issue-client --project P --user U --roles admin[,creator] --out DIR",
	Short: "Issue a KMIP client certificate for a project, user and roles",
	Long: `Issue a KMIP client certificate signed by Keywarden's CA (created in the data
directory if it does not exist yet). The certificate names the caller: O = project,
CN = user, one OU per role, and allows client authentication only. DIR receives
client.pem, client-key.pem (mode 0600) and ca.pem, the CA that also signs the
server certificate — what a KMIP client such as PyKMIP needs.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		f := issueClient
		if f.project == "" || f.user == "" || f.out == "" {
			return fmt.Errorf("--project, --user and --out are required")
		}
		if err := (kms.Identity{Project: f.project}).Validate(); err != nil {
			return fmt.Errorf("--project %q: use letters, digits and _.:@-", f.project)
		}
		if len(f.roles) == 0 {
			return fmt.Errorf("--roles is required (admin, creator, observer, audit, %s)", kms.RoleServiceAdmin)
		}
		for _, r := range f.roles {
			if !knownRole(r) {
				return fmt.Errorf("--roles: unknown role %q (admin, creator, observer, audit, %s)", r, kms.RoleServiceAdmin)
			}
		}
		if f.days <= 0 {
			return fmt.Errorf("--days must be positive")
		}
		ca, created, err := pki.LoadOrCreate(kmipCADir(f.dataDir))
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if created {
			fmt.Fprintln(out, "created the KMIP CA in", ca.Dir())
		}
		certPEM, keyPEM, err := ca.IssueClient(pki.ClientRequest{
			Project: f.project, User: f.user, Roles: f.roles, KeyType: f.keyType,
			Validity: time.Duration(f.days) * 24 * time.Hour,
		})
		if err != nil {
			return err
		}
		paths, err := ca.WriteClient(f.out, certPEM, keyPEM)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "client certificate for project %s, user %s, roles %v:\n", f.project, f.user, f.roles)
		for _, p := range paths {
			fmt.Fprintln(out, " ", p)
		}
		return nil
	},
}

var revokeFlags struct {
	dataDir, certFile, serial string
}

var revokeCmd = &cobra.Command{
	Use:   "revoke --data-dir D (--cert FILE | --serial S)",
	Short: "Revoke a KMIP client certificate of the built-in CA",
	Long: `Add a certificate issued by Keywarden's CA to its revocation list
(<data-dir>/kmip/crl.pem). A running server re-reads the list within 2 s: from
then on a handshake with the certificate is refused and its open connections
are closed. No restart. Give the certificate file or its serial in hex as
` + "`keywarden pki list`" + ` shows it.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		f := revokeFlags
		if (f.certFile == "") == (f.serial == "") {
			return fmt.Errorf("give exactly one of --cert and --serial")
		}
		ca, err := pki.Load(kmipCADir(f.dataDir))
		if err != nil {
			return fmt.Errorf("the KMIP CA in %s: %w", kmipCADir(f.dataDir), err)
		}
		var serial *big.Int
		if f.certFile != "" {
			b, err := os.ReadFile(f.certFile)
			if err != nil {
				return err
			}
			if serial, err = ca.CertSerial(b); err != nil {
				return err
			}
		} else if serial, err = pki.ParseSerial(f.serial); err != nil {
			return err
		}
		already, err := ca.Revoke(serial)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if already {
			fmt.Fprintf(out, "certificate %s was already revoked\n", pki.SerialHex(serial))
			return nil
		}
		fmt.Fprintf(out, "revoked certificate %s; a running server refuses it within 2 s (%s)\n",
			pki.SerialHex(serial), filepath.Join(ca.Dir(), pki.CRLFile))
		return nil
	},
}

var listFlags struct{ dataDir string }

var listCmd = &cobra.Command{
	Use:   "list --data-dir D",
	Short: "List the certificates the built-in CA issued, and which are revoked",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		ca, err := pki.Load(kmipCADir(listFlags.dataDir))
		if err != nil {
			return fmt.Errorf("the KMIP CA in %s: %w", kmipCADir(listFlags.dataDir), err)
		}
		list, err := ca.List()
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SERIAL\tKIND\tPROJECT\tUSER\tROLES\tNOT AFTER\tSTATUS")
		now := time.Now()
		for _, it := range list {
			kind, status := "client", "valid"
			if it.Server {
				kind = "server"
			}
			switch {
			case it.Revoked:
				status = "revoked " + it.RevokedAt.UTC().Format(time.RFC3339)
			case now.After(it.NotAfter):
				status = "expired"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Serial, kind, it.Project, it.User,
				strings.Join(it.Roles, ","), it.NotAfter.UTC().Format(time.RFC3339), status)
		}
		return w.Flush()
	},
}

func knownRole(r string) bool {
	return slices.Contains([]string{kms.RoleAdmin, kms.RoleCreator, kms.RoleObserver, kms.RoleAudit, kms.RoleServiceAdmin}, r)
}

func init() {
	fl := issueClientCmd.Flags()
	fl.StringVar(&issueClient.project, "project", "", "project the client acts in")
	fl.StringVar(&issueClient.user, "user", "", "user name (the certificate's CN)")
	fl.StringSliceVar(&issueClient.roles, "roles", nil, "roles, comma separated: admin, creator, observer, audit, "+kms.RoleServiceAdmin)
	fl.StringVar(&issueClient.out, "out", "", "directory to write client.pem, client-key.pem and ca.pem into")
	fl.StringVar(&issueClient.dataDir, "data-dir", defaultDataDir(), "data directory of the server (the CA is in <data-dir>/kmip)")
	fl.StringVar(&issueClient.keyType, "key-type", "rsa", "client key: rsa (2048), ecdsa (P-256) or ecdsa-p384 (Suite B minLOS 192 needs it)")
	fl.IntVar(&issueClient.days, "days", 365, "validity in days")
	pkiCmd.AddCommand(issueClientCmd)
	fl = initCACmd.Flags()
	fl.StringVar(&pkiInitFlags.dataDir, "data-dir", defaultDataDir(), "data directory of the server (the CA is in <data-dir>/kmip)")
	fl.StringVar(&pkiInitFlags.keyType, "key-type", "rsa", "CA key: rsa (2048) or ecdsa (P-384)")
	pkiCmd.AddCommand(initCACmd)
	fl = revokeCmd.Flags()
	fl.StringVar(&revokeFlags.dataDir, "data-dir", defaultDataDir(), "data directory of the server (the CA is in <data-dir>/kmip)")
	fl.StringVar(&revokeFlags.certFile, "cert", "", "the certificate to revoke (PEM)")
	fl.StringVar(&revokeFlags.serial, "serial", "", "the serial of the certificate to revoke, in hex")
	pkiCmd.AddCommand(revokeCmd)
	listCmd.Flags().StringVar(&listFlags.dataDir, "data-dir", defaultDataDir(), "data directory of the server (the CA is in <data-dir>/kmip)")
	pkiCmd.AddCommand(listCmd)
	rootCmd.AddCommand(pkiCmd)
}
