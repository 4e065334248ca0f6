package barbican

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

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
