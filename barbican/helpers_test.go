package barbican

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/kmstest"
	"github.com/keywarden/keywarden/kms/store/bolt"
	"github.com/keywarden/keywarden/kms/token"
)

// The tests run the real thing: a kms.Service on a bolt store and a root
// key in t.TempDir(), behind the adapter in an httptest server.

var hmacSecret = []byte("barbican-test-hmac-secret-0123456789")

// clock is kms's clock, movable forward to expire secrets.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// logBuffer collects the adapter's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type env struct {
	t     testing.TB
	srv   *httptest.Server
	url   string
	svc   *kms.Service
	store *bolt.Store
	clock *clock
	logs  *logBuffer
	// hdr is sent with every request unless overridden (no-auth identity).
	hdr map[string]string
}

type envOption func(*Config)

func withAuth() envOption           { return func(c *Config) { c.NoAuth = false } }
func withMaxBody(n int64) envOption { return func(c *Config) { c.MaxBody = n } }
func withHostHref(h string) envOption {
	return func(c *Config) { c.HostHref = h }
}

// newEnv starts a server in no-auth mode (a token, when sent, still
// counts), identity project p1 / user u1 / admin unless changed.
func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	st, root := kmstest.Bolt(t)
	clk := &clock{}
	svc := kmstest.Service(t, kms.Config{Store: st, Master: root, Now: clk.Now})
	ver, err := token.NewVerifier(token.Config{HMACSecret: hmacSecret})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cfg := Config{
		Service: svc, Auth: ver, NoAuth: true,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{
		t: t, srv: srv, url: srv.URL, svc: svc, store: st, clock: clk, logs: logs,
		hdr: map[string]string{"X-Project-Id": "p1", "X-User-Id": "u1"},
	}
}

// mint returns a valid token for id.
func mint(t testing.TB, id kms.Identity, ttl time.Duration) string {
	t.Helper()
	tok, err := token.Mint(hmacSecret, id, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// resp is an answer, body read.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r resp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.Body)
	}
	return m
}

// do sends a request. body may be nil, a string, []byte or io.Reader (sent
// as is) or any other value (sent as JSON with Content-Type
// application/json unless a header says otherwise). h lists header pairs
// (name, value); the value "-" drops a default header.
func (e *env) do(method, path string, body any, h ...string) resp {
	e.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range e.hdr {
		req.Header.Set(k, v)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if len(h)%2 != 0 {
		e.t.Fatal("odd header list")
	}
	for i := 0; i < len(h); i += 2 {
		if h[i+1] == "-" {
			req.Header.Del(h[i])
		} else {
			req.Header.Set(h[i], h[i+1])
		}
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// must checks the status and returns the answer.
func (e *env) must(status int, method, path string, body any, h ...string) resp {
	e.t.Helper()
	r := e.do(method, path, body, h...)
	if r.Status != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	return r
}

// createSecret makes a secret and returns its id.
func (e *env) createSecret(body map[string]any, h ...string) string {
	e.t.Helper()
	r := e.must(http.StatusCreated, "POST", "/v1/secrets", body, h...)
	ref, _ := r.JSON(e.t)["secret_ref"].(string)
	return idOfRef(e.t, ref)
}

// createText makes a text/plain secret.
func (e *env) createText(name, payload string, h ...string) string {
	e.t.Helper()
	return e.createSecret(map[string]any{"name": name, "payload": payload, "payload_content_type": "text/plain"}, h...)
}

var refRE = regexp.MustCompile(`/v1/secrets/([0-9a-f-]{36})$`)

func idOfRef(t testing.TB, ref string) string {
	t.Helper()
	m := refRE.FindStringSubmatch(ref)
	if m == nil {
		t.Fatalf("not a secret ref: %q", ref)
	}
	return m[1]
}

// checkError asserts a Barbican error body with the given status.
func checkError(t testing.TB, r resp, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	var b struct {
		Code        int    `json:"code"`
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("error body: %v: %q", err, r.Body)
	}
	if b.Code != status || b.Title != http.StatusText(status) || b.Description == "" {
		t.Errorf("error body %+v for status %d", b, status)
	}
}

// keys returns the sorted keys of m.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
