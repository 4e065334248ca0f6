package loadgen

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Result is one operation's run.
type Result struct {
	Op       string
	N, Errs  int // answered as expected; failed
	Elapsed  time.Duration
	Lat      []time.Duration // every request's latency, sorted
	FirstErr string
	// CPU (user+system) used during the run by the started server and by
	// this process; negative when unknown or there is no started server.
	ServerCPU, BenchCPU time.Duration
}

// Percentile is the latency at p (0 to 1: 1 is the maximum), to the
// microsecond; 0 without requests.
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	i := int(p * float64(len(r.Lat)-1))
	return r.Lat[i].Round(time.Microsecond)
}

// perOp is cpu per request, "-" when unknown.
func (r *Result) perOp(cpu time.Duration) string {
	if cpu < 0 || r.N+r.Errs == 0 {
		return "-"
	}
	return (cpu / time.Duration(r.N+r.Errs)).Round(100 * time.Nanosecond).String()
}

// WriteTable writes the results as the bench's right-aligned table.
// CPU per request (user+system, this process and the started server):
// unlike ops/s it hardly moves when other work shares the machine.
func WriteTable(out io.Writer, results []Result) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "op\trequests\terrors\tops/s\tp50\tp99\tmax\tserver CPU/op\tbench CPU/op\t")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", r.Op, r.N, r.Errs, float64(r.N)/r.Elapsed.Seconds(),
			r.Percentile(0.50), r.Percentile(0.99), r.Percentile(1), r.perOp(r.ServerCPU), r.perOp(r.BenchCPU))
	}
	return w.Flush()
}
