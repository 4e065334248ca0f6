package barbican

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
)

// benchClient keeps enough idle connections for the parallel benchmarks.
func benchClient(e *env) *http.Client {
	c := e.srv.Client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
	return c
}

func benchDo(b *testing.B, c *http.Client, req *http.Request, want int) {
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		b.Fatalf("status %d", res.StatusCode)
	}
}

// BenchmarkCreate: POST /v1/secrets with a 32-byte key, parallel clients;
// every create is a durable (fsynced, group-committed) bolt write.
func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	c := benchClient(e)
	body := []byte(`{"name":"bench","secret_type":"symmetric","algorithm":"aes","bit_length":256,` +
		`"payload_content_type":"application/octet-stream","payload_content_encoding":"base64","payload":"` +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 32)) + `"}`)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", e.url+"/v1/secrets", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Project-Id", "p1")
			benchDo(b, c, req, http.StatusCreated)
		}
	})
}

// BenchmarkGetPayload: GET /v1/secrets/{id}/payload, parallel clients.
func BenchmarkGetPayload(b *testing.B) {
	e := newEnv(b)
	c := benchClient(e)
	const n = 64
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.createText("bench", strings.Repeat("p", 64))
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req, _ := http.NewRequest("GET", e.url+"/v1/secrets/"+ids[i%n]+"/payload", nil)
			req.Header.Set("Accept", "text/plain")
			req.Header.Set("X-Project-Id", "p1")
			benchDo(b, c, req, http.StatusOK)
			i++
		}
	})
}
