package barbican

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestRouteLabel(t *testing.T) {
	// It runs on every request: no allocation, whatever the route.
	for _, p := range []string{"/v1/containers/c-1/secrets", "/v1/containers/c-1/acl", "/v1/secrets/s-1/acl/"} {
		if n := testing.AllocsPerRun(100, func() { RouteLabel(p) }); n != 0 {
			t.Errorf("RouteLabel(%q) allocates %v times", p, n)
		}
	}
	for path, want := range map[string]string{
		"/":                                 "/",
		"/v1":                               "/v1",
		"/v1/secrets/":                      "/v1/secrets",
		"/v1/secrets/0190-abc/payload":      "/v1/secrets/{id}/payload",
		"/v1/secrets/x/metadata/os_encrypt": "/v1/secrets/{id}/metadata/{key}",
		"/v1/secrets/secrets/metadata/acl":  "/v1/secrets/{id}/metadata/{key}",
		"/v1/containers/c-1/consumers":      "/v1/containers/{id}/consumers",
		"/v1/containers/c-1/secrets/":       "/v1/containers/{id}/secrets",
		"/v1/containers/c-1/acl":            "/v1/containers/{id}/acl",
		"/v1/containers/c-1/payload":        "other",
		"/v1/containers/c-1/acl/x":          "other",
		"/v1/orders/o-1":                    "/v1/orders/{id}",
		"/v1/project-quotas/p1":             "/v1/project-quotas/{id}",
		"/v1/secrets/x/payload/extra/a/b":   "other",
		"/admin":                            "other",
		"/v1/secrets/x/unknown":             "other",
	} {
		if got := RouteLabel(path); got != want {
			t.Errorf("RouteLabel(%q) = %q, want %q", path, got, want)
		}
	}
}

// Observe sees each request's route, method and final status.
func TestObserve(t *testing.T) {
	type seen struct {
		route, method string
		status        int
	}
	var mu sync.Mutex
	var got []seen
	e := newEnv(t, func(c *Config) {
		c.Observe = func(route, method string, status int, d time.Duration) {
			if d <= 0 {
				t.Errorf("duration %v", d)
			}
			mu.Lock()
			got = append(got, seen{route, method, status})
			mu.Unlock()
		}
	})
	id := e.createText("a", "x")
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload", nil, "Accept", "text/plain")
	e.do("GET", "/v1/secrets/not-a-uuid", nil)
	e.do("DELETE", "/v1/secrets", nil)
	mu.Lock()
	defer mu.Unlock()
	want := []seen{
		{"/v1/secrets", "POST", 201}, {"/v1/secrets/{id}/payload", "GET", 200},
		{"/v1/secrets/{id}", "GET", 404}, {"/v1/secrets", "DELETE", 405},
	}
	if len(got) != len(want) {
		t.Fatalf("observed %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d observed as %v, want %v", i, got[i], want[i])
		}
	}
}
