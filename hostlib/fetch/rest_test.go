package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/hostlib"
)

// fakeBarbican answers GET /v1/secrets/{id}[/payload] the way Barbican v1
// (and the Keywarden server) do. It exists to inject faults the real server
// cannot be made to produce on demand — 5xx bursts, hangs, redirects,
// chunked bodies — so retry, timeout and error mapping are tested here; the
// end-to-end fetch against the real server is in tests/host.
type fakeBarbican struct {
	token    string
	secrets  map[string]fakeSecret
	fail     atomic.Int32 // answer this many requests with failStatus first
	failCode int
	hang     atomic.Int32 // sleep past the client's timeout on this many requests
	requests atomic.Int32
	mu       sync.Mutex
	accepts  []string
}

type fakeSecret struct {
	typ, contentType string
	payload          []byte
	chunked          bool
}

const (
	symID  = "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c001"
	passID = "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c002"
	privID = "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c003"
	chunID = "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c004"
	bigID  = "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c005"
	denyID = "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c006"
	noneID = "0c6a3f0e-6bd5-4c2c-9f41-1df0a7a1c0ff"
)

var symKey = []byte{0x04, 0x00, 0xab, 0xcd, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b}

func newFake(t *testing.T) (*fakeBarbican, *httptest.Server) {
	f := &fakeBarbican{token: "host-token", failCode: http.StatusServiceUnavailable, secrets: map[string]fakeSecret{
		symID:  {typ: "symmetric", contentType: "application/octet-stream", payload: symKey},
		passID: {typ: "passphrase", contentType: "text/plain", payload: []byte("tr0ub4dor&3\n")},
		privID: {typ: "private", contentType: "application/pkcs8", payload: []byte("-----BEGIN")},
		chunID: {typ: "opaque", contentType: "application/octet-stream", payload: []byte("chunked-opaque-bytes"), chunked: true},
		bigID:  {typ: "opaque", contentType: "application/octet-stream", payload: make([]byte, maxPayload+10), chunked: true},
		denyID: {typ: "symmetric"},
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func barbicanError(w http.ResponseWriter, code int, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "title": http.StatusText(code), "description": desc})
}

func (f *fakeBarbican) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	if f.hang.Add(-1) >= 0 {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
		return
	}
	if f.fail.Add(-1) >= 0 {
		w.Header().Set("Retry-After", "0")
		barbicanError(w, f.failCode, "injected fault")
		return
	}
	if r.Header.Get("X-Auth-Token") != f.token {
		barbicanError(w, http.StatusUnauthorized, "Authentication required")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/secrets/")
	id, sub, _ := strings.Cut(rest, "/")
	s, found := f.secrets[id]
	switch {
	case !ok || !found:
		barbicanError(w, http.StatusNotFound, "Secret not found.")
	case id == denyID:
		barbicanError(w, http.StatusForbidden, "SecretACL denies read")
	case sub == "":
		json.NewEncoder(w).Encode(map[string]any{"secret_ref": "http://" + r.Host + "/v1/secrets/" + id,
			"secret_type": s.typ, "algorithm": "aes", "bit_length": 8 * len(s.payload), "status": "ACTIVE",
			"content_types": map[string]string{"default": s.contentType}})
	case sub == "payload":
		f.mu.Lock()
		f.accepts = append(f.accepts, r.Header.Get("Accept"))
		f.mu.Unlock()
		if r.Header.Get("Accept") != s.contentType {
			barbicanError(w, http.StatusNotAcceptable, "Wrong payload content-type")
			return
		}
		w.Header().Set("Content-Type", s.contentType)
		if s.chunked {
			w.(http.Flusher).Flush() // no Content-Length: the reader must bound it
		}
		w.Write(s.payload)
	default:
		barbicanError(w, http.StatusNotFound, "Not found")
	}
}

var fastRetry = Retry{Attempts: 3, Timeout: 2 * time.Second, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}

func restClient(t *testing.T, srv *httptest.Server, token string) *Client {
	c, err := New(Config{REST: &RESTConfig{Endpoint: srv.URL, Token: token}})
	if err != nil {
		t.Fatal(err)
	}
	c.retry = fastRetry
	return c
}

func TestRESTFetchesExactMaterial(t *testing.T) {
	f, srv := newFake(t)
	c := restClient(t, srv, f.token)
	for _, tc := range []struct{ ref, typ, want string }{
		{symID, "symmetric", string(symKey)},
		{srv.URL + "/v1/secrets/" + passID, "passphrase", "tr0ub4dor&3\n"},
		{chunID, "opaque", "chunked-opaque-bytes"},
	} {
		s, err := c.Fetch(context.Background(), tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if s.Type != tc.typ || string(s.Material()) != tc.want {
			t.Fatalf("%s: got %s %q", tc.ref, s.Type, s.Material())
		}
		s.Close()
	}
	if want := []string{"application/octet-stream", "text/plain", "application/octet-stream"}; fmt.Sprint(f.accepts) != fmt.Sprint(want) {
		t.Fatalf("payload Accept headers %v, want %v", f.accepts, want)
	}
}

func TestRESTPermanentErrorsAreNotRetried(t *testing.T) {
	f, srv := newFake(t)
	cases := []struct {
		ref, token string
		want       error
		requests   int32
	}{
		{noneID, f.token, hostlib.ErrNotFound, 1},
		{denyID, f.token, hostlib.ErrForbidden, 1},
		{symID, "stale-token", hostlib.ErrUnauthorized, 1},
		{privID, f.token, hostlib.ErrWrongType, 1}, // refused before its payload is fetched
	}
	for _, tc := range cases {
		f.requests.Store(0)
		_, err := restClient(t, srv, tc.token).Fetch(context.Background(), tc.ref)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.ref, err, tc.want)
		}
		if n := f.requests.Load(); n != tc.requests {
			t.Errorf("%s: %d requests, want %d", tc.ref, n, tc.requests)
		}
	}
}

func TestRESTRetriesTransientFaults(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway} {
		f, srv := newFake(t)
		f.failCode = code
		f.fail.Store(2)
		s, err := restClient(t, srv, f.token).Fetch(context.Background(), symID)
		if err != nil {
			t.Fatalf("HTTP %d twice then OK: %v", code, err)
		}
		s.Close()
		if n := f.requests.Load(); n != 4 { // 2 failures + metadata + payload
			t.Fatalf("HTTP %d: %d requests, want 4", code, n)
		}
	}
}

func TestRESTGivesUpAsUnavailable(t *testing.T) {
	f, srv := newFake(t)
	f.fail.Store(1000)
	_, err := restClient(t, srv, f.token).Fetch(context.Background(), symID)
	if !errors.Is(err, hostlib.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if n := f.requests.Load(); n != 3 {
		t.Fatalf("%d requests, want 3 attempts", n)
	}
}

func TestRESTTimeoutPerAttempt(t *testing.T) {
	f, srv := newFake(t)
	f.hang.Store(1)
	c := restClient(t, srv, f.token)
	c.retry.Timeout = 150 * time.Millisecond
	start := time.Now()
	s, err := c.Fetch(context.Background(), symID)
	if err != nil {
		t.Fatalf("one hang then OK: %v", err)
	}
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v: the hung attempt was not cut at its timeout", d)
	}
	f.hang.Store(100)
	if _, err := c.Fetch(context.Background(), symID); !errors.Is(err, hostlib.ErrUnavailable) {
		t.Fatalf("always hanging: %v", err)
	}
}

func TestRESTCallerCancelStopsRetrying(t *testing.T) {
	f, srv := newFake(t)
	f.fail.Store(1000)
	c := restClient(t, srv, f.token)
	c.retry = Retry{Attempts: 50, Base: 200 * time.Millisecond, Max: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Fetch(ctx, symID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
}

func TestRESTTokenStaysHome(t *testing.T) {
	f, srv := newFake(t)
	var leaked atomic.Bool
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") != "" {
			leaked.Store(true)
		}
	}))
	defer evil.Close()
	c := restClient(t, srv, f.token)
	if _, err := c.Fetch(context.Background(), evil.URL+"/v1/secrets/"+symID); !errors.Is(err, hostlib.ErrBadRef) {
		t.Fatalf("ref on another host: %v", err)
	}
	redirect := httptest.NewServer(http.RedirectHandler(evil.URL+"/v1/secrets/"+symID, http.StatusFound))
	defer redirect.Close()
	rc := restClient(t, redirect, f.token)
	if _, err := rc.Fetch(context.Background(), symID); err == nil {
		t.Fatal("a redirect was followed")
	}
	if leaked.Load() {
		t.Fatal("the host token reached another server")
	}
}

func TestRESTOversizedPayloadRefused(t *testing.T) {
	f, srv := newFake(t)
	if _, err := restClient(t, srv, f.token).Fetch(context.Background(), bigID); !errors.Is(err, errTooLarge) {
		t.Fatalf("oversized payload: %v", err)
	}
	if n := f.requests.Load(); n != 2 {
		t.Fatalf("%d requests: an oversized payload is not worth a retry", n)
	}
}

func TestRESTTokenFileIsReread(t *testing.T) {
	f, srv := newFake(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte("old\n"), 0o600)
	c, err := New(Config{REST: &RESTConfig{Endpoint: srv.URL, TokenFile: tokFile}})
	if err != nil {
		t.Fatal(err)
	}
	c.retry = fastRetry
	if _, err := c.Fetch(context.Background(), symID); !errors.Is(err, hostlib.ErrUnauthorized) {
		t.Fatalf("old token: %v", err)
	}
	os.WriteFile(tokFile, []byte(f.token+"\n"), 0o600)
	s, err := c.Fetch(context.Background(), symID)
	if err != nil {
		t.Fatalf("rotated token: %v", err)
	}
	s.Close()
}

func TestRESTConfigRefusesRemotePlainHTTP(t *testing.T) {
	if _, err := NewREST(RESTConfig{Endpoint: "http://kms.example.com:9311"}); err == nil {
		t.Fatal("plain http to a remote host accepted")
	}
	if _, err := NewREST(RESTConfig{Endpoint: "http://kms.example.com:9311", AllowInsecureHTTP: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewREST(RESTConfig{Endpoint: "http://127.0.0.1:9311"}); err != nil {
		t.Fatal(err)
	}
}
