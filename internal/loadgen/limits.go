package loadgen

import (
	"fmt"
	"io"
	"strconv"
)

// rate is r's answered requests per second.
func (r *Result) rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.N) / r.Elapsed.Seconds()
}

// thousands formats n rounded, with thousands separators: 44,746.
func thousands(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// durable tells the operations that wait for a durable write.
func durable(op string) bool { return op == "create" || op == "pair" }

// run describes what was measured, for the limits and targets.
type runInfo struct {
	protocol string // "rest" or "kmip"
	tls      bool   // the requests went over TLS
	clients  int
	inflight int
}

// limitLines puts every figure beside the machine's limit measured in the
// same run: a bare server's rate (TLS when the requests used TLS: KMIP
// always does) and, for durable writes, one writer's sync rate.
func limitLines(b *Baseline, results []Result, ri runInfo) []string {
	lim, limName := b.HTTP, "bare net/http"
	if ri.tls || ri.protocol == "kmip" {
		lim, limName = b.TLS, "bare net/http + crypto/tls"
	}
	var out []string
	for _, r := range results {
		line := fmt.Sprintf("%s %s/s = %s of %s %s/s", r.Op, thousands(r.rate()), pct(r.rate(), lim.rate()), limName, thousands(lim.rate()))
		if durable(r.Op) {
			line += fmt.Sprintf("; %s of the disk's 4 KiB fdatasync rate %s/s (one writer)", pct(r.rate(), b.Sync.rate()), thousands(b.Sync.rate()))
		}
		out = append(out, line)
	}
	return out
}

// pct is a as a percentage of b; a peer far under the limit keeps two
// decimals rather than reading 0%.
func pct(a, b float64) string {
	if b <= 0 {
		return "?%"
	}
	p := 100 * a / b
	if p > 0 && p < 0.995 {
		return strconv.FormatFloat(p, 'f', 2, 64) + "%"
	}
	return strconv.Itoa(int(p+0.5)) + "%"
}

// targetLines are issue 14's targets that apply to this run (they name a
// number of connections), each with the figure and whether it was met. b
// may be nil: the targets relative to the machine then need --baseline.
func targetLines(b *Baseline, results []Result, ri runInfo) []string {
	var out []string
	add := func(r Result, want float64, what string) {
		verdict := "met"
		if r.rate() < want {
			verdict = "NOT met"
		}
		out = append(out, fmt.Sprintf("%s at %d %s: %s/s, target ≥ %s/s (%s): %s", r.Op, ri.clients, conns(ri), thousands(r.rate()), thousands(want), what, verdict))
	}
	for _, r := range results {
		switch {
		case ri.protocol == "kmip" && r.Op == "pair" && ri.clients == 1:
			add(r, 2000, "Create+Get pairs, one connection")
		case ri.protocol == "kmip" && r.Op == "pair" && ri.clients == 32:
			add(r, 10000, "Create+Get pairs, 32 connections")
		case ri.protocol == "kmip" && r.Op == "get" && ri.clients == 16:
			add(r, 20000, "Get, 16 connections")
		case ri.protocol == "rest" && r.Op == "create" && ri.clients == 32:
			add(r, 10000, "durable create, 32 clients")
		case ri.protocol == "rest" && r.Op == "get" && b != nil:
			lim, name := b.HTTP, "bare net/http"
			if ri.tls {
				lim, name = b.TLS, "bare crypto/tls"
			}
			add(r, 0.75*lim.rate(), "75% of "+name)
		}
		if r.Op == "create" && ri.clients == 1 && b != nil {
			add(r, 0.5*b.Sync.rate(), "one client, 50% of the disk's sync rate")
		}
	}
	return out
}

func conns(ri runInfo) string {
	if ri.protocol == "kmip" {
		if ri.clients == 1 {
			return "connection"
		}
		return "connections"
	}
	if ri.clients == 1 {
		return "client"
	}
	return "clients"
}

// writeLimits prints the limit and target lines under the table.
func writeLimits(out io.Writer, b *Baseline, results []Result, ri runInfo) {
	if b != nil {
		fmt.Fprintln(out, "\nagainst this machine's limits (measured above, same run):")
		for _, l := range limitLines(b, results, ri) {
			fmt.Fprintln(out, "  "+l)
		}
	}
	if ts := targetLines(b, results, ri); len(ts) > 0 {
		fmt.Fprintln(out, "\nissue 14's targets:")
		for _, l := range ts {
			fmt.Fprintln(out, "  "+l)
		}
	}
}
