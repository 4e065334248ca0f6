package main

import (
	"testing"
	"time"

	"github.com/keywarden/keywarden/barbican"
)

// The cost metrics add to every REST request: the route label and two
// series updates.
func BenchmarkObserveREST(b *testing.B) {
	m := newMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.observeREST(barbican.RouteLabel("/v1/secrets/0190a5c2-7d3e-7b1a-9c4f-2f7e0d3c1a55/payload"), "GET", 200, 40*time.Microsecond)
	}
}

func BenchmarkRouteLabel(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		barbican.RouteLabel("/v1/secrets/0190a5c2-7d3e-7b1a-9c4f-2f7e0d3c1a55/payload")
	}
}
