package loadgen

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond+400*time.Nanosecond)
	}
	r := Result{Lat: lat}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.50, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := r.Percentile(c.p); got != c.want {
			t.Errorf("Percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := (&Result{}).Percentile(0.5); got != 0 {
		t.Errorf("Percentile without requests = %v, want 0", got)
	}
	one := Result{Lat: []time.Duration{1500 * time.Nanosecond}}
	if got := one.Percentile(0.99); got != 2*time.Microsecond {
		t.Errorf("one request: %v, want 2µs", got)
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	err := WriteTable(&b, []Result{
		{Op: "create", N: 1000, Errs: 0, Elapsed: 2 * time.Second,
			Lat:       []time.Duration{time.Millisecond, 2 * time.Millisecond, 30 * time.Millisecond},
			ServerCPU: 900 * time.Millisecond, BenchCPU: 120 * time.Millisecond},
		{Op: "get", N: 0, Errs: 0, Elapsed: time.Second, ServerCPU: -1, BenchCPU: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"      op  requests  errors  ops/s  p50  p99   max  server CPU/op  bench CPU/op",
		"  create      1000       0    500  2ms  2ms  30ms          900µs         120µs",
		"     get         0       0      0   0s   0s    0s              -             -",
	}
	var got []string
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPerOp(t *testing.T) {
	r := Result{N: 3, Errs: 1}
	if got := r.perOp(time.Millisecond); got != "250µs" {
		t.Errorf("perOp = %q", got)
	}
	if got := r.perOp(1234567 * time.Nanosecond); got != "308.6µs" {
		t.Errorf("perOp rounds to 100ns: %q", got)
	}
	if got := r.perOp(-1); got != "-" {
		t.Errorf("unknown CPU: %q", got)
	}
}
