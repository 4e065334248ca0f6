package loadgen

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestMeasureBaseline runs the real bare servers and the real sync loop,
// briefly.
func TestMeasureBaseline(t *testing.T) {
	dir := t.TempDir()
	b, err := MeasureBaseline("", 2, 200*time.Millisecond, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Result{b.HTTP, b.TLS, b.Sync} {
		if r.N == 0 || r.Errs != 0 || r.rate() <= 0 {
			t.Errorf("%s: %d answered, %d errors (%s)", r.Op, r.N, r.Errs, r.FirstErr)
		}
	}
	// The bare servers are processes of their own: their CPU is known.
	if b.HTTP.ServerCPU < 0 || b.TLS.ServerCPU < 0 {
		t.Errorf("bare server CPU unknown: %v %v", b.HTTP.ServerCPU, b.TLS.ServerCPU)
	}
	if !strings.Contains(b.Sync.Op, dir) {
		t.Errorf("the sync figure does not say where it was measured: %q", b.Sync.Op)
	}
	var out bytes.Buffer
	if err := b.Write(&out); err != nil || !strings.Contains(out.String(), "bare net/http + crypto/tls") {
		t.Errorf("Write: %v\n%s", err, out.String())
	}
	if _, err := MeasureBaseline("", 1, time.Millisecond, dir+"/missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a sync dir that does not exist: %v", err)
	}
}

func res(op string, perSecond int) Result {
	return Result{Op: op, N: perSecond, Elapsed: time.Second}
}

func TestLimitLines(t *testing.T) {
	b := &Baseline{HTTP: res("bare", 44746), TLS: res("tls", 30000), Sync: res("sync", 7500)}
	got := limitLines(b, []Result{res("create", 8703), res("get", 22600)}, runInfo{protocol: "rest", clients: 32})
	want := []string{
		"create 8,703/s = 19% of bare net/http 44,746/s; 116% of the disk's 4 KiB fdatasync rate 7,500/s (one writer)",
		"get 22,600/s = 51% of bare net/http 44,746/s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("limits:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// KMIP is over TLS: its limit is the TLS server.
	got = limitLines(b, []Result{res("get", 15000)}, runInfo{protocol: "kmip", clients: 16})
	if got[0] != "get 15,000/s = 50% of bare net/http + crypto/tls 30,000/s" {
		t.Errorf("kmip: %q", got[0])
	}
}

func TestTargetLines(t *testing.T) {
	b := &Baseline{HTTP: res("bare", 40000), TLS: res("tls", 30000), Sync: res("sync", 7000)}
	for _, c := range []struct {
		ri      runInfo
		results []Result
		want    []string
	}{
		{runInfo{protocol: "kmip", clients: 1}, []Result{res("pair", 2100), res("create", 3000)}, []string{
			"pair at 1 connection: 2,100/s, target ≥ 2,000/s (Create+Get pairs, one connection): met",
			"create at 1 connection: 3,000/s, target ≥ 3,500/s (one client, 50% of the disk's sync rate): NOT met"}},
		{runInfo{protocol: "kmip", clients: 32}, []Result{res("pair", 4046)}, []string{
			"pair at 32 connections: 4,046/s, target ≥ 10,000/s (Create+Get pairs, 32 connections): NOT met"}},
		{runInfo{protocol: "kmip", clients: 16}, []Result{res("get", 20000)}, []string{
			"get at 16 connections: 20,000/s, target ≥ 20,000/s (Get, 16 connections): met"}},
		{runInfo{protocol: "kmip", clients: 8}, []Result{res("pair", 2218), res("get", 9000)}, nil},
		{runInfo{protocol: "rest", clients: 32}, []Result{res("create", 10001), res("get", 30000)}, []string{
			"create at 32 clients: 10,001/s, target ≥ 10,000/s (durable create, 32 clients): met",
			"get at 32 clients: 30,000/s, target ≥ 30,000/s (75% of bare net/http): met"}},
		{runInfo{protocol: "rest", clients: 32, tls: true}, []Result{res("get", 20000)}, []string{
			"get at 32 clients: 20,000/s, target ≥ 22,500/s (75% of bare crypto/tls): NOT met"}},
	} {
		got := targetLines(b, c.results, c.ri)
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%+v:\n%s\nwant:\n%s", c.ri, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
	// Without a baseline, only the absolute targets.
	if got := targetLines(nil, []Result{res("get", 1), res("create", 1)}, runInfo{protocol: "rest", clients: 1}); len(got) != 0 {
		t.Errorf("no baseline: %q", got)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[float64]string{0: "0", 999.4: "999", 999.6: "1,000", 44746: "44,746", 1180899: "1,180,899"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%v) = %q, want %q", n, got, want)
		}
	}
}

func TestPct(t *testing.T) {
	for _, c := range []struct {
		a, b float64
		want string
	}{{22600, 44700, "51%"}, {163, 44700, "0.36%"}, {0, 100, "0%"}, {1, 0, "?%"}, {99.6, 100, "100%"}, {0.996, 100, "1%"}} {
		if got := pct(c.a, c.b); got != c.want {
			t.Errorf("pct(%v, %v) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

func TestStartBareBadBinary(t *testing.T) {
	if _, _, _, err := startBare("/bin/true", false); err == nil || !strings.Contains(err.Error(), "bare server") {
		t.Fatalf("a binary that does not serve: %v", err)
	}
}
