package barbican

import (
	"strings"
	"testing"
)

// TestRouteTable holds each route's metrics label equal to RouteLabel of
// the paths the route matches, and lists no method and path twice.
func TestRouteTable(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range (&api{}).routes() {
		key := rt.method + " " + rt.path
		if seen[key] {
			t.Errorf("%s is in the route table twice", key)
		}
		seen[key] = true
		segs := strings.Split(rt.path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, "{") {
				segs[i] = "0f8e1e6e-3c3b-4e2a-9c1a-2d1f3b4a5c6d"
			}
		}
		if got := RouteLabel(strings.Join(segs, "/")); got != rt.label {
			t.Errorf("%s: RouteLabel = %q, the table says %q", key, got, rt.label)
		}
	}
}
