package loadgen

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeBarbican answers as Barbican's v1 API does for the bench's two
// requests, checking the auth headers it is given: with a token,
// X-Auth-Token; without, the no-auth pipeline's X-Project-Id (400 without)
// and X-Roles. With uwsgi, it answers as Debian's packaged uwsgi does:
// no Content-Length, Connection: close.
func fakeBarbican(t *testing.T, token string, uwsgi bool) (http.Handler, *atomic.Int64) {
	var (
		mu      sync.Mutex
		secrets = map[string][]byte{}
		served  atomic.Int64
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if uwsgi {
			w.Header().Set("Connection", "close")
		}
		switch {
		case token != "" && r.Header.Get("X-Auth-Token") != token:
			http.Error(w, `{"code": 401, "title": "Unauthorized"}`, http.StatusUnauthorized)
			return
		case token == "" && (r.Header.Get("X-Project-Id") != "p1" || r.Header.Get("X-Roles") != "creator"):
			http.Error(w, `{"code": 400, "title": "Bad Request"}`, http.StatusBadRequest)
			return
		}
		switch {
		case r.Method == "POST" && r.URL.Path == "/v1/secrets":
			body, _ := io.ReadAll(r.Body)
			if r.Header.Get("Content-Type") != "application/json" || !bytes.Contains(body, []byte(`"payload":"`)) {
				http.Error(w, "bad create", 400)
				return
			}
			mu.Lock()
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(secrets))
			secrets[id] = body
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			fmt.Fprintf(w, `{"secret_ref": "http://%s/v1/secrets/%s"}`, r.Host, id)
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/secrets/") && strings.HasSuffix(r.URL.Path, "/payload"):
			id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/secrets/"), "/payload")
			mu.Lock()
			_, ok := secrets[id]
			mu.Unlock()
			if !ok || r.Header.Get("Accept") != "application/octet-stream" {
				http.Error(w, "no such secret", 404)
				return
			}
			w.Write(bytes.Repeat([]byte{7}, 32))
		default:
			http.Error(w, "not found", 404)
		}
	}), &served
}

// uwsgiFraming drops Content-Length as uwsgi's rem-header does: the
// response is framed by the connection's end only (net/http does that for
// Transfer-Encoding: identity without a length).
func uwsgiFraming(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		rec := &recorder{ResponseWriter: w, buf: &b, status: 200}
		h.ServeHTTP(rec, r)
		w.Header().Del("Content-Length")
		w.Header().Set("Transfer-Encoding", "identity")
		w.WriteHeader(rec.status)
		w.(http.Flusher).Flush()
		w.Write(b.Bytes())
	})
}

type recorder struct {
	http.ResponseWriter
	buf    *bytes.Buffer
	status int
}

func (r *recorder) WriteHeader(s int)           { r.status = s }
func (r *recorder) Write(b []byte) (int, error) { return r.buf.Write(b) }

func restConfig(url string) Config {
	return Config{Target: url, Clients: 3, Duration: 300 * time.Millisecond, Ops: []string{"create", "get"}}
}

func checkTable(t *testing.T, out string, ops ...string) {
	t.Helper()
	for _, op := range ops {
		f := strings.Fields(tableLine(t, out, op))
		if f[1] == "0" || f[2] != "0" {
			t.Errorf("%s: %v, want requests and no errors\n%s", op, f, out)
		}
	}
}

func TestTargetToken(t *testing.T) {
	h, served := fakeBarbican(t, "tok", false)
	srv := httptest.NewServer(h)
	defer srv.Close()
	cfg := restConfig(srv.URL)
	cfg.Token = "tok"
	cfg.Baseline, cfg.BaselineDuration, cfg.SyncDir = true, 100*time.Millisecond, t.TempDir()
	var out bytes.Buffer
	if err := Bench(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	checkTable(t, out.String(), "create", "get-first", "get")
	if served.Load() == 0 || !strings.Contains(out.String(), "target "+srv.URL+", X-Auth-Token") {
		t.Errorf("header:\n%s", out.String())
	}
	// The baseline comes first; each figure then stands beside its limit.
	o := out.String()
	if i, j := strings.Index(o, "bare net/http + crypto/tls"), strings.Index(o, "keywarden bench:"); i < 0 || j < i ||
		!strings.Contains(o, "get ") || !strings.Contains(o[j:], "% of bare net/http ") || !strings.Contains(o[j:], "fdatasync rate") {
		t.Errorf("baseline and limits:\n%s", o)
	}
}

// TestTargetNoAuthUWSGI: no-auth headers, and answers framed as Debian's
// uwsgi frames Barbican's (no length, a connection each).
func TestTargetNoAuthUWSGI(t *testing.T) {
	h, _ := fakeBarbican(t, "", true)
	srv := httptest.NewServer(uwsgiFraming(h))
	defer srv.Close()
	cfg := restConfig(srv.URL)
	cfg.Project, cfg.Roles = "p1", "creator"
	var out bytes.Buffer
	if err := Bench(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	checkTable(t, out.String(), "create", "get-first", "get")
}

// TestTargetHTTPS: https with the server's CA given; without it, one
// clear error naming --ca.
func TestTargetHTTPS(t *testing.T) {
	h, _ := fakeBarbican(t, "tok", false)
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := restConfig(srv.URL)
	cfg.Token, cfg.CACert, cfg.Ops = "tok", ca, []string{"create"}
	var out bytes.Buffer
	if err := Bench(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	checkTable(t, out.String(), "create")

	cfg.CACert = ""
	if err := Bench(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "--ca") {
		t.Fatalf("without the CA: %v", err)
	}
}

func TestTargetBadInput(t *testing.T) {
	closed, _ := freeAddr()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Target: "http://" + closed, Token: "t"}, "connection refused"},
		{Config{Target: "127.0.0.1:9311", Token: "t"}, "want http://host:port"},
		{Config{Target: "http://127.0.0.1:9311/v1", Token: "t"}, "without /v1"},
		{Config{Target: "http://127.0.0.1:9311"}, "needs --token"},
		{Config{Target: "http://127.0.0.1:9311", Project: "p\r\nX-Roles: admin"}, "line breaks"},
		{Config{Target: "http://127.0.0.1:9311", Token: "t", Protocol: "grpc"}, "want rest or kmip"},
	} {
		c.cfg.Clients, c.cfg.Duration = 1, time.Millisecond
		err := Bench(context.Background(), c.cfg, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want one saying %q", c.cfg, err, c.want)
		}
	}
}
