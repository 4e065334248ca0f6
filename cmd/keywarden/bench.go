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
	url, token, project, ops, keepDir, cpuProfile, serverConfig string
	clients                                                     int
	duration                                                    time.Duration
	keystone                                                    bool
}

var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Load-test the REST API: secret create and payload get throughput and latency",
	Long: `Without --url, bench starts a throw-away 'keywarden serve' (same binary, temporary
data dir, durable store, JWT auth; --server-config gives it a config file) and drives it;
with --url it drives a running server using --token (or --project with a server in
--insecure-noauth mode).

With --keystone, the requests carry a Keystone token instead, obtained with the OpenStack
environment (an openrc: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME,
OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME); the started server needs auth.keystone in
its --server-config.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		o := benchOpts
		tuneRuntime() // the load generator shares the CPU with the server: keep its GC small too
		out := cmd.OutOrStdout()
		results, err := loadgen.Run(cmd.Context(), loadgen.Config{
			URL: o.url, Token: o.token, Project: o.project, Ops: strings.Split(o.ops, ","),
			Clients: o.clients, Duration: o.duration, Keystone: o.keystone,
			DataDir: o.keepDir, CPUProfile: o.cpuProfile, ServerConfig: o.serverConfig,
		}, out)
		if err != nil {
			return err
		}
		return loadgen.WriteTable(out, results)
	},
}

func init() {
	f := benchCmd.Flags()
	f.StringVar(&benchOpts.url, "url", "", "server base URL, e.g. http://127.0.0.1:9311 (default: start one)")
	f.StringVar(&benchOpts.token, "token", "", "X-Auth-Token for --url")
	f.StringVar(&benchOpts.project, "project", "", "X-Project-Id for --url servers in --insecure-noauth mode")
	f.StringVar(&benchOpts.ops, "ops", "create,get", "operations, in order: create, get")
	f.IntVar(&benchOpts.clients, "clients", 32, "concurrent keep-alive connections")
	f.DurationVar(&benchOpts.duration, "duration", 10*time.Second, "time per operation")
	f.StringVar(&benchOpts.keepDir, "data-dir", "", "data dir of the started server (default: temporary, removed)")
	f.StringVar(&benchOpts.cpuProfile, "server-cpuprofile", "", "write the started server's CPU profile here")
	f.StringVar(&benchOpts.serverConfig, "server-config", "", "config file for the started server (e.g. with auth.keystone)")
	f.BoolVar(&benchOpts.keystone, "keystone", false, "send a Keystone token obtained with the OS_* environment")
	rootCmd.AddCommand(benchCmd)
}
