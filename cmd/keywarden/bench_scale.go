package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/loadgen"
)

var benchScaleOpts struct {
	secrets, clients, samples int
	dataDir, cpuProfile       string
	getTime                   time.Duration
	listsOnly                 bool
	mapBudget                 int64
}

var benchScaleCmd = &cobra.Command{
	Use:   "scale",
	Short: "Fill one project with --secrets secrets and measure lists, start-up, RSS, GETs and bytes per secret",
	Long: `scale fills a bolt store (temporary, or --data-dir, where a store already that full is
reused) with --secrets secrets of one project through kms directly, then measures in
this process, with the server's GC settings: start-up, list pages at offsets 0, N/2 and
N-100, filtered and sorted lists, peak RSS, payload GET/s against the same store when it
held 1,000 secrets, and store bytes per secret; each figure beside issue 14's limit.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		o := benchScaleOpts
		tuneRuntime() // as the server runs
		return loadgen.RunScale(cmd.Context(), loadgen.ScaleConfig{
			Secrets: o.secrets, DataDir: o.dataDir, Clients: o.clients, Samples: o.samples, GetTime: o.getTime,
			CPUProfile: o.cpuProfile, ListsOnly: o.listsOnly, MapBudget: o.mapBudget,
		}, cmd.OutOrStdout())
	},
}

func init() {
	f := benchScaleCmd.Flags()
	f.IntVar(&benchScaleOpts.secrets, "secrets", 1000000, "secrets in the project")
	f.IntVar(&benchScaleOpts.clients, "clients", 32, "concurrent creators and readers")
	f.IntVar(&benchScaleOpts.samples, "samples", 200, "calls per list case")
	f.StringVar(&benchScaleOpts.dataDir, "data-dir", "", "keep the store here (default: temporary, removed)")
	f.StringVar(&benchScaleOpts.cpuProfile, "cpuprofile", "", "write a CPU profile of the measurements (not the fill) here")
	f.DurationVar(&benchScaleOpts.getTime, "get-time", 5*time.Second, "time per GET measurement")
	f.BoolVar(&benchScaleOpts.listsOnly, "lists-only", false, "stop after the list cases (no orphan report, no GETs)")
	f.Int64Var(&benchScaleOpts.mapBudget, "map-budget", 0, "bytes of the bolt file mapped in RSS before a trim (0 or -1: no trimming, the default)")
	benchCmd.AddCommand(benchScaleCmd)
}
