package barbican

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Handler-level benchmarks: the adapter's own CPU and allocations per
// request (routing, auth, JSON, kms, crypto), without sockets, so that they
// are stable on a busy machine. BenchmarkCreate/BenchmarkGetPayload measure
// the same over HTTP.

// benchWriter is a reusable http.ResponseWriter.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

func benchHandler(b *testing.B) (*env, http.Handler, string) {
	e := newEnv(b, withAuth())
	tok := mint(b, kms.Identity{Project: "p1", User: "u1", Roles: []string{kms.RoleAdmin}}, time.Hour)
	h := e.srv.Config.Handler
	return e, h, tok
}

func BenchmarkHandlerGetPayload(b *testing.B) {
	e, h, tok := benchHandler(b)
	const n = 64
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.createSecret(map[string]any{
			"name": "bench", "secret_type": "symmetric", "algorithm": "aes", "bit_length": 256,
			"payload_content_type": "application/octet-stream", "payload_content_encoding": "base64",
			"payload": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 32)),
		}, "X-Auth-Token", tok)
	}
	reqs := make([]*http.Request, n)
	for i, id := range ids {
		r, _ := http.NewRequest("GET", "http://127.0.0.1:9311/v1/secrets/"+id+"/payload", nil)
		r.Header.Set("Accept", "application/octet-stream")
		r.Header.Set("X-Auth-Token", tok)
		reqs[i] = r
	}
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w.reset()
		h.ServeHTTP(w, reqs[i%n])
		if w.status != http.StatusOK || w.n != 32 {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
}

func BenchmarkHandlerCreate(b *testing.B) {
	_, h, tok := benchHandler(b)
	body := `{"name":"bench","secret_type":"symmetric","algorithm":"aes","bit_length":256,"mode":"xts",` +
		`"payload_content_type":"application/octet-stream","payload_content_encoding":"base64","payload":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 32)) + `"}`
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		r, _ := http.NewRequest("POST", "http://127.0.0.1:9311/v1/secrets", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Auth-Token", tok)
		h.ServeHTTP(w, r)
		if w.status != http.StatusCreated {
			b.Fatalf("status %d", w.status)
		}
	}
}

func TestIsUUIDMatchesTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	cases := []string{"", "x", "0123456789abcdef0123456789abcdef0123",
		"01234567-89ab-cdef-0123-456789abcdef", "01234567-89AB-CDEF-0123-456789ABCDEF",
		"01234567-89ab-cdef-0123-456789abcdeg", "01234567-89ab-cdef-0123-456789abcde",
		"01234567-89ab-cdef-0123-456789abcdef0", "01234567+89ab-cdef-0123-456789abcdef",
		"0123456789ab-cdef-0123-456789abcdef-", "{1234567-89ab-cdef-0123-456789abcdef",
		"01234567-89ab-cdef-0123-456789abcdé"}
	for _, c := range cases {
		if got, want := isUUID(c), re.MatchString(c); got != want {
			t.Errorf("isUUID(%q) = %v, regexp says %v", c, got, want)
		}
	}
}

func TestNewRequestIDIsAUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		rid := newRequestID()
		id, ok := strings.CutPrefix(rid, "req-")
		u, err := uuid.Parse(id)
		if !ok || err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != id || seen[rid] {
			t.Fatalf("request id %q", rid)
		}
		seen[rid] = true
	}
}

func mustURL(p string) *url.URL { return &url.URL{Path: p} }

// BenchmarkCreateParse: the adapter's part of a create, body to
// kms.CreateRequest (readJSONObject + createRequest), without kms.
func BenchmarkCreateParse(b *testing.B) {
	body := `{"name":"bench","secret_type":"symmetric","algorithm":"aes","bit_length":256,"mode":"xts",` +
		`"payload_content_type":"application/octet-stream","payload_content_encoding":"base64","payload":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 32)) + `"}`
	rd := strings.NewReader(body)
	r, _ := http.NewRequest("POST", "http://127.0.0.1:9311/v1/secrets", rd)
	r.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		obj, raw, err := readJSONObject(r)
		if err != nil {
			b.Fatal(err)
		}
		req, scrub, err := createRequest(obj)
		if err != nil || len(req.Payload) != 32 {
			b.Fatal(err)
		}
		for _, s := range scrub {
			crypto.Zero(s)
		}
		crypto.Zero(raw)
	}
}

// BenchmarkRoute is the frame's routing alone: mux's Match over the route
// table for a payload GET, then the handler's read of its variable.
func BenchmarkRoute(b *testing.B) {
	a := &api{}
	router := a.router()
	id := uuid.NewString()
	r, _ := http.NewRequest("GET", "http://127.0.0.1:9311/v1/secrets/"+id+"/payload", nil)
	st, r := stateOf(r)
	b.ReportAllocs()
	for b.Loop() {
		st.route, st.match = nil, mux.RouteMatch{}
		if !router.Match(r, &st.match) || routeVar(r, "id") != id {
			b.Fatal("no match")
		}
	}
}

// TestRouteVarAfterMethodMismatch: a route whose path matched but whose
// method did not leaves no variable behind for the route that matches.
func TestRouteVarAfterMethodMismatch(t *testing.T) {
	e := newEnv(t, withAuth())
	tok := mint(t, kms.Identity{Project: "p1", User: "u1", Roles: []string{kms.RoleAdmin}}, time.Hour)
	id := e.createSecret(map[string]any{"name": "n", "secret_type": "opaque", "payload": "x", "payload_content_type": "text/plain"},
		"X-Auth-Token", tok)
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"POST", "", 201}, {"GET", "/k1", 200}, {"PUT", "/k1", 200}, {"DELETE", "/k1", 204}, {"GET", "/k1", 404},
	} {
		r, _ := http.NewRequest(c.method, e.srv.URL+"/v1/secrets/"+id+"/metadata"+c.path, strings.NewReader(`{"key":"k1","value":"v"}`))
		r.Header.Set("X-Auth-Token", tok)
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.want)
		}
	}
}
