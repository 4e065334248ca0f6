package barbican

import (
	"context"
	"net/http"
	"testing"
)

// The table router: first matching route in order, the variables by name,
// 405 for a path some route has with another method, else 404, and no
// allocation for a request that comes through the frame (reqState set).
func TestRouter(t *testing.T) {
	var got string
	h := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = name + " id=" + pathVar(r, "id") + " key=" + pathVar(r, "key")
		})
	}
	rt := &router{notFound: h("404"), methodNotAllowed: h("405")}
	for _, b := range []struct{ method, path, name string }{
		{"GET", "/v1/secrets/{id}/payload", "payload"},
		{"GET", "/v1/secrets/{id}", "get"},
		{"DELETE", "/v1/secrets/{id}", "delete"},
		{"GET", "/v1/secrets/{id}/metadata/{key}", "metadatum"},
		{"GET", "/v1/secrets/{id}/{key}", "later"}, // shadowed by the rows above
	} {
		rt.routes = append(rt.routes, boundRoute{method: b.method, tpl: newPathTemplate(b.path), h: h(b.name)})
	}
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/v1/secrets/a/payload", "payload id=a key="},
		{"GET", "/v1/secrets/a", "get id=a key="},
		{"DELETE", "/v1/secrets/a", "delete id=a key="},
		{"GET", "/v1/secrets/a/metadata/k", "metadatum id=a key=k"},
		{"GET", "/v1/secrets/a/acl", "later id=a key=acl"},
		{"PUT", "/v1/secrets/a", "405 id= key="},
		{"get", "/v1/secrets/a", "405 id= key="},
		{"GET", "/v1/secrets/a/b/c", "404 id= key="},
		{"GET", "/v1/secrets/", "404 id= key="},
	} {
		got = ""
		r, _ := http.NewRequest(c.method, "http://h"+c.path, nil)
		r = r.WithContext(context.WithValue(r.Context(), reqStateKey, &reqState{}))
		rt.ServeHTTP(nil, r)
		if got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.want)
		}
	}
	rt.routes[0].h = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	r, _ := http.NewRequest("GET", "http://h/v1/secrets/a/payload", nil)
	r = r.WithContext(context.WithValue(r.Context(), reqStateKey, &reqState{}))
	if n := testing.AllocsPerRun(100, func() { rt.ServeHTTP(nil, r) }); n != 0 {
		t.Errorf("routing allocated %v times per request, want 0", n)
	}
}
