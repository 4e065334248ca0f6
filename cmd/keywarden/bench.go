package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/loadgen"
)

// bench is the project's load tool (internal/loadgen): flags → loadgen.Config
// → run → the table.
var benchOpts struct {
	url, token, project, ops, keepDir, cpuProfile, cpuProfileOp, serverConfig string
	clients                                                                   int
	duration                                                                  time.Duration
	keystone                                                                  bool

	// Other targets (any Barbican API, any KMIP server) and the baseline.
	target, protocol, roles, caCert, clientCert, clientKey, serverName, syncDir string
	legacyCiphers, baseline, serverTLS                                          bool
	inFlight                                                                    int
	serverPIDs                                                                  []int
	baselineDuration                                                            time.Duration
}

var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Load-test a key manager: Keywarden, any Barbican API (REST) or any KMIP server",
	Long: `Without --target, bench starts a throw-away 'keywarden serve' (same binary, temporary
data dir, durable store, JWT auth; --server-config gives it a config file) and drives it;
with --target it drives a running server: any Barbican v1 API (http:// or https:// URL)
using --token (X-Auth-Token) or --project/--roles (X-Project-Id/X-Roles, for Barbican's
noauth pipeline or Keywarden's --insecure-noauth).

REST operations: create (POST /v1/secrets, a fresh AES-256 key) and get (GET
/v1/secrets/{id}/payload of the keys created: each client reads its last 256 keys once,
reported as "get-first" since a key's first read is an audited state change, KMIP's Fresh
attribute cleared, then reads them again and again for the "get" row).

--protocol kmip drives a KMIP server (--target host:port; without it, the started server's
KMIP endpoint with a client certificate issued for it) over persistent mutual-TLS
connections, with messages built by github.com/ovh/kmip-go: pair (one message: Create an
AES-256 key and Get it through the ID Placeholder), create, get. --cert, --key and --ca
name the client certificate and the server's CA; --tls-legacy-ciphers offers TLS 1.2 with
the CBC and RSA key-exchange suites that servers such as PyKMIP's need; --in-flight sends
several messages ahead of their answers on each connection.

--baseline first measures this machine's limits in the same run: a bare net/http server
answering 32 bytes, the same over crypto/tls (both driven like the target), and one
writer's 4 KiB write+fdatasync rate in --sync-dir (default: the started server's data dir,
else the current directory); every figure is then printed beside its limit, and issue 14's
targets beside the figures they concern.

--server-pid (repeatable) names the target's processes (e.g. a peer's uwsgi workers) so
that its CPU per request is reported.

With --keystone, the requests carry a Keystone token instead, obtained with the OpenStack
environment (an openrc: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME,
OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME); the started server needs auth.keystone in
its --server-config.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		o := benchOpts
		tuneRuntime() // the load generator shares the CPU with the server: keep its GC small too
		if o.target == "" {
			o.target = o.url
		}
		ops := o.ops
		if !cmd.Flags().Changed("ops") && o.protocol == "kmip" {
			ops = "pair,get"
		}
		return loadgen.Bench(cmd.Context(), loadgen.Config{
			Target: o.target, Protocol: o.protocol, Token: o.token, Project: o.project, Roles: o.roles,
			Ops: strings.Split(ops, ","), Clients: o.clients, InFlight: o.inFlight, Duration: o.duration, Keystone: o.keystone,
			CACert: o.caCert, ClientCert: o.clientCert, ClientKey: o.clientKey, ServerName: o.serverName,
			LegacyCiphers: o.legacyCiphers, ServerPIDs: o.serverPIDs,
			Baseline: o.baseline, BaselineDuration: o.baselineDuration, SyncDir: o.syncDir,
			DataDir: o.keepDir, CPUProfile: o.cpuProfile, CPUProfileOp: o.cpuProfileOp, ServerTLS: o.serverTLS, ServerConfig: o.serverConfig,
		}, cmd.OutOrStdout())
	},
}

func init() {
	f := benchCmd.Flags()
	f.StringVar(&benchOpts.target, "target", "", "server to drive: a Barbican API URL (http://127.0.0.1:9311), or host:port with --protocol kmip (default: start one)")
	f.StringVar(&benchOpts.url, "url", "", "the same as --target (REST)")
	f.MarkDeprecated("url", "use --target")
	f.StringVar(&benchOpts.protocol, "protocol", "rest", "rest (Barbican v1 API) or kmip")
	f.StringVar(&benchOpts.token, "token", "", "X-Auth-Token for --target")
	f.StringVar(&benchOpts.project, "project", "", "X-Project-Id for a --target without authentication (Barbican noauth, Keywarden --insecure-noauth)")
	f.StringVar(&benchOpts.roles, "roles", "admin", "X-Roles sent with --project")
	f.StringVar(&benchOpts.ops, "ops", "create,get", "operations, in order: create, get (REST); pair, create, get (KMIP; default pair,get)")
	f.IntVar(&benchOpts.clients, "clients", 32, "concurrent keep-alive connections")
	f.IntVar(&benchOpts.inFlight, "in-flight", 1, "KMIP: messages sent ahead of their answers on each connection")
	f.DurationVar(&benchOpts.duration, "duration", 10*time.Second, "time per operation")
	f.StringVar(&benchOpts.caCert, "ca", "", "PEM CA of the server's certificate (https:// targets, KMIP; default: the system's)")
	f.StringVar(&benchOpts.clientCert, "cert", "", "PEM client certificate (KMIP)")
	f.StringVar(&benchOpts.clientKey, "key", "", "PEM key of --cert")
	f.StringVar(&benchOpts.serverName, "server-name", "", "name to verify in the server's certificate (default: the target's host)")
	f.BoolVar(&benchOpts.legacyCiphers, "tls-legacy-ciphers", false, "offer TLS 1.2 only, with the CBC and RSA key-exchange suites (PyKMIP's server)")
	f.IntSliceVar(&benchOpts.serverPIDs, "server-pid", nil, "the target's process ids, for its CPU per request (repeatable)")
	f.BoolVar(&benchOpts.baseline, "baseline", false, "measure the machine's limits first (bare HTTP/TLS server, disk sync rate) and print every figure beside them")
	f.DurationVar(&benchOpts.baselineDuration, "baseline-duration", 3*time.Second, "time per baseline measurement")
	f.StringVar(&benchOpts.syncDir, "sync-dir", "", "directory of the disk sync measurement (default: the started server's data dir, else .)")
	f.StringVar(&benchOpts.keepDir, "data-dir", "", "data dir of the started server (default: temporary, removed)")
	f.StringVar(&benchOpts.cpuProfile, "server-cpuprofile", "", "write the started server's CPU profile here")
	f.StringVar(&benchOpts.cpuProfileOp, "server-cpuprofile-op", "", "profile only this operation's measured run (e.g. get: not the creates nor get-first); default: the whole run")
	f.BoolVar(&benchOpts.serverTLS, "server-tls", false, "serve the started server's REST API over TLS (a throw-away certificate the bench trusts), to compare with the bare crypto/tls baseline")
	f.StringVar(&benchOpts.serverConfig, "server-config", "", "config file for the started server (e.g. with auth.keystone)")
	f.BoolVar(&benchOpts.keystone, "keystone", false, "send a Keystone token obtained with the OS_* environment")
	rootCmd.AddCommand(benchCmd)
}
