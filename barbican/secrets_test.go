package barbican

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)

// secretFields10 are exactly the fields of a secret with a payload at 1.0.
var secretFields10 = []string{"algorithm", "bit_length", "content_types", "created", "creator_id", "expiration", "mode", "name", "secret_ref", "secret_type", "status", "updated"}

func TestCreateSecretAndGetMetadata(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusCreated, "POST", "/v1/secrets", map[string]any{
		"name": "disk-1", "payload": "passphrase", "payload_content_type": "text/plain",
		"algorithm": "aes", "bit_length": 256, "mode": "xts", "secret_type": "passphrase",
	})
	ref := r.JSON(t)["secret_ref"].(string)
	if r.Header.Get("Location") != ref || !strings.HasPrefix(ref, e.url+"/v1/secrets/") {
		t.Fatalf("ref %q, Location %q", ref, r.Header.Get("Location"))
	}
	if got := keys(r.JSON(t)); !slices.Equal(got, []string{"secret_ref"}) {
		t.Errorf("create answer fields %v", got)
	}
	id := idOfRef(t, ref)
	for _, accept := range []string{"", "application/json", "*/*"} {
		m := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil, "Accept", orDrop(accept)).JSON(t)
		if got := keys(m); !slices.Equal(got, secretFields10) {
			t.Fatalf("Accept %q: fields %v", accept, got)
		}
		want := map[string]any{
			"name": "disk-1", "status": "ACTIVE", "algorithm": "aes", "bit_length": 256.0, "mode": "xts",
			"secret_type": "passphrase", "creator_id": "u1", "expiration": nil, "secret_ref": ref,
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
		if ct := m["content_types"].(map[string]any); len(ct) != 1 || ct["default"] != "text/plain" {
			t.Errorf("content_types %v", ct)
		}
		for _, k := range []string{"created", "updated"} {
			if s, _ := m[k].(string); !timeRE.MatchString(s) {
				t.Errorf("%s = %q: not naive UTC with microseconds", k, m[k])
			}
		}
	}
}

func orDrop(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

func TestSecretFieldsByMicroversion(t *testing.T) {
	e := newEnv(t)
	id := e.createText("used", "s")
	c := kms.Consumer{Service: "cinder", ResourceType: "volume", ResourceID: "vol-1"}
	if _, err := e.svc.AddConsumer(context.Background(), kms.Identity{Project: "p1", User: "u1", Roles: []string{"admin"}}, id, c); err != nil {
		t.Fatal(err)
	}
	m := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil).JSON(t)
	if _, ok := m["consumers"]; ok {
		t.Error("consumers at 1.0")
	}
	list := e.must(http.StatusOK, "GET", "/v1/secrets", nil).JSON(t)["secrets"].([]any)
	if _, ok := list[0].(map[string]any)["consumers"]; ok {
		t.Error("consumers in a 1.0 list")
	}
	for _, v := range []string{"key-manager 1.1", "key-manager 1.2"} {
		m = e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil, "OpenStack-API-Version", v).JSON(t)
		cs, ok := m["consumers"].([]any)
		if !ok || len(cs) != 1 {
			t.Fatalf("%s: consumers %v", v, m["consumers"])
		}
		want := map[string]any{"service": "cinder", "resource_type": "volume", "resource_id": "vol-1"}
		if got := cs[0].(map[string]any); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("consumer %v", got)
		}
		list = e.must(http.StatusOK, "GET", "/v1/secrets", nil, "OpenStack-API-Version", v).JSON(t)["secrets"].([]any)
		if _, ok := list[0].(map[string]any)["consumers"]; !ok {
			t.Errorf("%s: no consumers in list", v)
		}
	}
	// A secret without consumers shows an empty list, not null.
	id2 := e.createText("free", "s")
	m = e.must(http.StatusOK, "GET", "/v1/secrets/"+id2, nil, "OpenStack-API-Version", "key-manager 1.1").JSON(t)
	if cs, ok := m["consumers"].([]any); !ok || len(cs) != 0 {
		t.Errorf("consumers %#v", m["consumers"])
	}
}

func TestMetadataOnlySecret(t *testing.T) {
	e := newEnv(t)
	id := e.createSecret(map[string]any{"name": "later"})
	m := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil).JSON(t)
	if _, ok := m["content_types"]; ok {
		t.Error("content_types without a payload")
	}
	if m["secret_type"] != "opaque" || m["bit_length"] != nil || m["algorithm"] != nil {
		t.Errorf("defaults %v", m)
	}
	checkError(t, e.do("GET", "/v1/secrets/"+id+"/payload", nil), http.StatusNotFound)
}

func TestBinaryPayloadRoundTrip(t *testing.T) {
	e := newEnv(t)
	key := []byte{0x00, 0xff, 0x10, 0x80, 0xfe, 0x01, 0x02, 0x03}
	id := e.createSecret(map[string]any{
		"payload": base64.StdEncoding.EncodeToString(key), "payload_content_type": "application/octet-stream",
		"payload_content_encoding": "base64", "secret_type": "symmetric", "algorithm": "aes", "bit_length": 64,
	})
	for _, accept := range []string{"application/octet-stream", "*/*", "", "application/pkcs8"} {
		r := e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload", nil, "Accept", orDrop(accept))
		if !bytes.Equal(r.Body, key) {
			t.Errorf("Accept %q: payload %x", accept, r.Body)
		}
		want := "application/octet-stream"
		if accept == "application/pkcs8" {
			want = accept
		}
		if ct := r.Header.Get("Content-Type"); ct != want {
			t.Errorf("Accept %q: Content-Type %q", accept, ct)
		}
	}
	m := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil).JSON(t)
	if m["content_types"].(map[string]any)["default"] != "application/octet-stream" {
		t.Errorf("content_types %v", m["content_types"])
	}
	// Line-wrapped base64 (as base64(1) prints it) decodes the same.
	enc := base64.StdEncoding.EncodeToString(bytes.Repeat(key, 20))
	wrapped := enc[:40] + "\n" + enc[40:]
	id = e.createSecret(map[string]any{"payload": wrapped, "payload_content_type": "application/octet-stream", "payload_content_encoding": "base64"})
	if r := e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload", nil); !bytes.Equal(r.Body, bytes.Repeat(key, 20)) {
		t.Error("wrapped base64 payload changed")
	}
}

func TestTextPayloadContentTypes(t *testing.T) {
	e := newEnv(t)
	for _, ct := range []string{"text/plain", "text/plain;charset=utf-8", "text/plain; charset=utf-8", "TEXT/PLAIN; charset=UTF-8"} {
		id := e.createSecret(map[string]any{"payload": "  héllo wörld\n", "payload_content_type": ct})
		r := e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload", nil, "Accept", "text/plain")
		// Barbican strips surrounding whitespace from JSON string fields.
		if string(r.Body) != "héllo wörld" {
			t.Errorf("%q: payload %q", ct, r.Body)
		}
		if got := r.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
			t.Errorf("%q: Content-Type %q", ct, got)
		}
		m := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil).JSON(t)
		if m["content_types"].(map[string]any)["default"] != "text/plain" {
			t.Errorf("%q: stored as %v", ct, m["content_types"])
		}
	}
}

func TestGetPayloadAcceptMismatchIs406(t *testing.T) {
	e := newEnv(t)
	text := e.createText("t", "hello")
	checkError(t, e.do("GET", "/v1/secrets/"+text+"/payload", nil, "Accept", "application/json"), http.StatusNotAcceptable)
	checkError(t, e.do("GET", "/v1/secrets/"+text+"/payload", nil, "Accept", "text/plain; charset=latin-1"), http.StatusNotAcceptable)
	bin := e.createSecret(map[string]any{"payload": base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe, 0x00}),
		"payload_content_type": "application/octet-stream", "payload_content_encoding": "base64"})
	// Not UTF-8: cannot be served as text.
	checkError(t, e.do("GET", "/v1/secrets/"+bin+"/payload", nil, "Accept", "text/plain"), http.StatusNotAcceptable)
	// But a preference list with something acceptable is served.
	r := e.must(http.StatusOK, "GET", "/v1/secrets/"+bin+"/payload", nil, "Accept", "text/plain, application/octet-stream;q=0.5")
	if !bytes.Equal(r.Body, []byte{0xff, 0xfe, 0x00}) {
		t.Errorf("payload %x", r.Body)
	}
}

func TestGetPayloadTextAsBinaryLikeBarbican(t *testing.T) {
	e := newEnv(t)
	id := e.createText("t", "hello")
	r := e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload", nil, "Accept", "application/octet-stream")
	if string(r.Body) != "hello" || r.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("%q %q", r.Body, r.Header.Get("Content-Type"))
	}
}

func TestGetPayloadLegacyForms(t *testing.T) {
	e := newEnv(t)
	id := e.createText("t", "hello")
	// ?payload_content_type= instead of Accept.
	r := e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload?payload_content_type=text/plain", nil, "Accept", "application/json")
	if string(r.Body) != "hello" {
		t.Errorf("legacy param: %q", r.Body)
	}
	// GET on the secret itself with a payload Accept.
	for _, accept := range []string{"application/octet-stream", "text/plain"} {
		r = e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil, "Accept", accept)
		if string(r.Body) != "hello" {
			t.Errorf("legacy GET with Accept %s: %q", accept, r.Body)
		}
	}
	checkError(t, e.do("GET", "/v1/secrets/"+id, nil, "Accept", "application/xml"), http.StatusNotAcceptable)
	checkError(t, e.do("POST", "/v1/secrets/"+id+"/payload", "x", "Content-Type", "text/plain"), http.StatusMethodNotAllowed)
}

func TestCreateTrailingSlash(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusCreated, "POST", "/v1/secrets/", map[string]any{"name": "slash", "payload": "p", "payload_content_type": "text/plain"})
	id := idOfRef(t, r.JSON(t)["secret_ref"].(string))
	e.must(http.StatusOK, "GET", "/v1/secrets/", nil)
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/", nil)
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload/", nil)
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/metadata/", nil)
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/acl/", nil)
	e.must(http.StatusNoContent, "DELETE", "/v1/secrets/"+id+"/", nil)
}

func TestCreateMalformedJSONIs400(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{`{"name": `, `not json`, `[1,2]`, `"x"`, ``, `null`} {
		checkError(t, e.do("POST", "/v1/secrets", body, "Content-Type", "application/json"), http.StatusBadRequest)
	}
}

func TestCreateWrongContentTypeIs415(t *testing.T) {
	e := newEnv(t)
	body := `{"name": "x"}`
	checkError(t, e.do("POST", "/v1/secrets", body, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
	checkError(t, e.do("POST", "/v1/secrets", body, "Content-Type", "application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType)
	checkError(t, e.do("POST", "/v1/secrets", body), http.StatusUnsupportedMediaType) // none
	e.must(http.StatusCreated, "POST", "/v1/secrets", body, "Content-Type", "application/json; charset=UTF-8")
}

func TestCreatePayloadTooLargeIs413(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/secrets", map[string]any{"payload": strings.Repeat("a", 20001), "payload_content_type": "text/plain"})
	checkError(t, r, http.StatusRequestEntityTooLarge)
	e.createSecret(map[string]any{"payload": strings.Repeat("a", 20000), "payload_content_type": "text/plain"})
}

func TestCreatePayloadLimitIsOnDecodedBytes(t *testing.T) {
	e := newEnv(t)
	// 20000 bytes are 26668 base64 characters: allowed, the key is 20000.
	ok := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 20000))
	e.createSecret(map[string]any{"payload": ok, "payload_content_type": "application/octet-stream", "payload_content_encoding": "base64"})
	big := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 20001))
	r := e.do("POST", "/v1/secrets", map[string]any{"payload": big, "payload_content_type": "application/octet-stream", "payload_content_encoding": "base64"})
	checkError(t, r, http.StatusRequestEntityTooLarge)
}

func TestCreateInvalidFieldsAre400(t *testing.T) {
	e := newEnv(t)
	b64 := base64.StdEncoding.EncodeToString([]byte("key"))
	cases := map[string]map[string]any{
		"payload without content type":   {"payload": "x"},
		"content type without payload":   {"payload_content_type": "text/plain"},
		"unsupported content type":       {"payload": "x", "payload_content_type": "application/json"},
		"unsupported charset":            {"payload": "x", "payload_content_type": "text/plain; charset=latin-1"},
		"text with encoding":             {"payload": b64, "payload_content_type": "text/plain", "payload_content_encoding": "base64"},
		"binary without encoding":        {"payload": "x", "payload_content_type": "application/octet-stream"},
		"unknown encoding":               {"payload": "x", "payload_content_type": "application/octet-stream", "payload_content_encoding": "hex"},
		"binary encoding":                {"payload": "x", "payload_content_type": "application/octet-stream", "payload_content_encoding": "binary"},
		"invalid base64":                 {"payload": "!!!not base64", "payload_content_type": "application/octet-stream", "payload_content_encoding": "base64"},
		"empty payload":                  {"payload": "", "payload_content_type": "text/plain"},
		"blank payload":                  {"payload": " \n\t", "payload_content_type": "text/plain"},
		"bit_length zero":                {"bit_length": 0},
		"bit_length negative":            {"bit_length": -1},
		"bit_length too big":             {"bit_length": 32768},
		"bit_length as string":           {"bit_length": "256"},
		"bit_length fraction":            {"bit_length": 1.5},
		"name not a string":              {"name": 12},
		"payload not a string":           {"payload": 12, "payload_content_type": "text/plain"},
		"expiration garbage":             {"expiration": "tomorrow"},
		"expiration in the past":         {"expiration": "2001-01-01T00:00:00"},
		"expiration past with offset":    {"expiration": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)},
		"unknown secret type":            {"secret_type": "banana"},
		"name too long":                  {"name": strings.Repeat("n", 256)},
		"content type not a string":      {"payload": "x", "payload_content_type": 5},
		"encoding without payload, bad":  {"payload_content_encoding": "gzip"},
		"algorithm not a string":         {"algorithm": []string{"aes"}},
		"secret_type not a string":       {"secret_type": true},
		"payload with only content type": {"payload_content_type": "application/octet-stream", "payload_content_encoding": "base64"},
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			checkError(t, e.do("POST", "/v1/secrets", body), http.StatusBadRequest)
		})
	}
}

func TestCreateExpirationFormats(t *testing.T) {
	e := newEnv(t)
	cases := map[string]string{
		"2999-01-02T03:04:05":               "2999-01-02T03:04:05.000000",
		"2999-01-02T03:04:05Z":              "2999-01-02T03:04:05.000000",
		"2999-01-02T03:04:05.123456Z":       "2999-01-02T03:04:05.123456",
		"2999-01-02T03:04:05+02:00":         "2999-01-02T01:04:05.000000",
		"2999-01-02T03:04:05.5-0130":        "2999-01-02T04:34:05.500000",
		"2999-01-02 03:04:05":               "2999-01-02T03:04:05.000000",
		"2999-01-02":                        "2999-01-02T00:00:00.000000",
		" 2999-01-02T03:04:05.000001+00:00": "2999-01-02T03:04:05.000001",
	}
	for in, want := range cases {
		id := e.createSecret(map[string]any{"name": "exp", "expiration": in})
		m := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil).JSON(t)
		if m["expiration"] != want {
			t.Errorf("expiration %q shown as %v, want %s", in, m["expiration"], want)
		}
	}
	// Empty or null expiration: none.
	id := e.createSecret(map[string]any{"expiration": "", "name": nil, "algorithm": nil})
	if m := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil).JSON(t); m["expiration"] != nil || m["name"] != nil {
		t.Errorf("%v", m)
	}
}

// countingReader is a body of n bytes that counts what was read from it.
type countingReader struct {
	n, read atomic.Int64
}

func newCountingReader(n int64) *countingReader {
	c := &countingReader{}
	c.n.Store(n)
	return c
}

func (c *countingReader) Read(p []byte) (int, error) {
	left := c.n.Load() - c.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), left)
	for i := range p[:k] {
		p[i] = 'a'
	}
	c.read.Add(k)
	return int(k), nil
}

func TestBodyOverMaxBodyWithLengthRejectedUnread(t *testing.T) {
	const max = 64 << 10
	e := newEnv(t, withMaxBody(max))
	body := newCountingReader(64 << 20)
	req, err := http.NewRequest("POST", e.url+"/v1/secrets", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 64 << 20
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Project-Id", "p1")
	res, err := e.srv.Client().Do(req)
	if err == nil {
		defer res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", res.StatusCode)
		}
	} else {
		t.Logf("client saw %v (the server hung up on the body)", err)
	}
	got := body.read.Load()
	t.Logf("the client sent %d bytes of a %d-byte body", got, 64<<20)
	if got > 16<<20 {
		t.Errorf("read %d bytes of a %d-byte body", got, 64<<20)
	}
}

func TestBodyOverMaxBodyChunkedRejectedEarly(t *testing.T) {
	const max = 64 << 10
	e := newEnv(t, withMaxBody(max))
	body := newCountingReader(64 << 20)
	req, err := http.NewRequest("POST", e.url+"/v1/secrets", io.NopCloser(body)) // no length: chunked
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Project-Id", "p1")
	res, err := e.srv.Client().Do(req)
	if err == nil {
		defer res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", res.StatusCode)
		}
	} else {
		t.Logf("client saw %v (the server hung up on the body)", err)
	}
	got := body.read.Load()
	t.Logf("the client sent %d bytes of a %d-byte body", got, 64<<20)
	if got > 16<<20 {
		t.Errorf("read %d bytes of a %d-byte body", got, 64<<20)
	}
	// The cap also applies to PUT payload bodies.
	id := e.createSecret(map[string]any{"name": "x"})
	r := e.do("PUT", "/v1/secrets/"+id, strings.Repeat("a", max+1), "Content-Type", "text/plain")
	checkError(t, r, http.StatusRequestEntityTooLarge)
}

func TestNonUUIDIs404(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/v1/secrets/not-a-uuid", "/v1/secrets/1234", "/v1/secrets/not-a-uuid/payload",
		"/v1/secrets/not-a-uuid/metadata", "/v1/secrets/not-a-uuid/metadata/k", "/v1/secrets/not-a-uuid/acl",
		"/v1/secrets/0e0e0e0e-0e0e-0e0e-0e0e-0e0e0e0e0e0g"} {
		r := e.do("GET", path, nil)
		checkError(t, r, http.StatusNotFound)
		if !strings.Contains(string(r.Body), "invalid") {
			t.Errorf("%s: %s", path, r.Body)
		}
	}
	checkError(t, e.do("DELETE", "/v1/secrets/nope", nil), http.StatusNotFound)
	checkError(t, e.do("PUT", "/v1/secrets/nope", "x", "Content-Type", "text/plain"), http.StatusNotFound)
}

func TestUnknownSecretIs404(t *testing.T) {
	e := newEnv(t)
	id := "6b7f0c1e-8a53-4c1b-9d3c-1f2e3d4c5b6a"
	for _, path := range []string{"/v1/secrets/" + id, "/v1/secrets/" + id + "/payload", "/v1/secrets/" + id + "/metadata", "/v1/secrets/" + id + "/acl"} {
		checkError(t, e.do("GET", path, nil), http.StatusNotFound)
	}
	checkError(t, e.do("DELETE", "/v1/secrets/"+id, nil), http.StatusNotFound)
	// Ids are case-insensitive on the way in.
	real := e.createText("x", "y")
	e.must(http.StatusOK, "GET", "/v1/secrets/"+strings.ToUpper(real), nil)
}

func TestExpiredSecretIs404AndNotListed(t *testing.T) {
	e := newEnv(t)
	soon := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	exp := e.createSecret(map[string]any{"name": "ephemeral", "expiration": soon, "payload": "x", "payload_content_type": "text/plain"})
	keep := e.createText("durable", "y")
	if total := e.must(http.StatusOK, "GET", "/v1/secrets", nil).JSON(t)["total"]; total != 2.0 {
		t.Fatalf("total %v", total)
	}
	e.clock.Advance(2 * time.Hour)
	for _, p := range []string{"", "/payload", "/metadata", "/acl"} {
		checkError(t, e.do("GET", "/v1/secrets/"+exp+p, nil), http.StatusNotFound)
	}
	checkError(t, e.do("DELETE", "/v1/secrets/"+exp, nil), http.StatusNotFound)
	list := e.must(http.StatusOK, "GET", "/v1/secrets", nil).JSON(t)
	secs := list["secrets"].([]any)
	if list["total"] != 1.0 || len(secs) != 1 || !strings.HasSuffix(secs[0].(map[string]any)["secret_ref"].(string), keep) {
		t.Errorf("list after expiry: %v", list)
	}
}

func TestOtherProjectsSecretIs403(t *testing.T) {
	e := newEnv(t)
	id := e.createText("mine", "secret")
	p2 := []string{"X-Project-Id", "p2", "X-User-Id", "mallory"}
	for _, c := range []struct{ method, path string }{
		{"GET", ""}, {"GET", "/payload"}, {"GET", "/metadata"}, {"GET", "/acl"}, {"DELETE", ""},
		{"DELETE", "/metadata/k"}, {"DELETE", "/acl"},
	} {
		checkError(t, e.do(c.method, "/v1/secrets/"+id+c.path, nil, p2...), http.StatusForbidden)
	}
	checkError(t, e.do("PUT", "/v1/secrets/"+id, "x", append(p2, "Content-Type", "text/plain")...), http.StatusForbidden)
	checkError(t, e.do("PUT", "/v1/secrets/"+id+"/metadata", map[string]any{"metadata": map[string]string{"a": "b"}}, p2...), http.StatusForbidden)
	checkError(t, e.do("PUT", "/v1/secrets/"+id+"/acl", map[string]any{"read": map[string]any{"users": []string{"mallory"}}}, p2...), http.StatusForbidden)
	// And it is not in their list.
	if total := e.must(http.StatusOK, "GET", "/v1/secrets", nil, p2...).JSON(t)["total"]; total != 0.0 {
		t.Errorf("p2 sees %v secrets", total)
	}
}

func TestTwoStepPut(t *testing.T) {
	e := newEnv(t)
	id := e.createSecret(map[string]any{"name": "two-step"})
	e.must(http.StatusNoContent, "PUT", "/v1/secrets/"+id, "the payload", "Content-Type", "text/plain; charset=utf-8")
	r := e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload", nil, "Accept", "text/plain")
	if string(r.Body) != "the payload" {
		t.Errorf("payload %q", r.Body)
	}
	m := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil).JSON(t)
	if m["content_types"].(map[string]any)["default"] != "text/plain" {
		t.Errorf("content_types %v", m["content_types"])
	}
	checkError(t, e.do("PUT", "/v1/secrets/"+id, "again", "Content-Type", "text/plain"), http.StatusConflict)

	// Binary with base64 Content-Encoding.
	bin := e.createSecret(map[string]any{"name": "bin"})
	e.must(http.StatusNoContent, "PUT", "/v1/secrets/"+bin, base64.StdEncoding.EncodeToString([]byte{1, 2, 0, 255}),
		"Content-Type", "application/octet-stream", "Content-Encoding", "base64")
	if r := e.must(http.StatusOK, "GET", "/v1/secrets/"+bin+"/payload", nil, "Accept", "*/*"); !bytes.Equal(r.Body, []byte{1, 2, 0, 255}) {
		t.Errorf("payload %x", r.Body)
	}
	// Raw binary.
	raw := e.createSecret(map[string]any{"name": "raw"})
	e.must(http.StatusNoContent, "PUT", "/v1/secrets/"+raw, []byte{9, 0, 9}, "Content-Type", "application/octet-stream")
	if r := e.must(http.StatusOK, "GET", "/v1/secrets/"+raw+"/payload", nil); !bytes.Equal(r.Body, []byte{9, 0, 9}) {
		t.Errorf("payload %x", r.Body)
	}
}

func TestTwoStepPutRefusals(t *testing.T) {
	e := newEnv(t)
	id := e.createSecret(map[string]any{"name": "empty"})
	checkError(t, e.do("PUT", "/v1/secrets/"+id, "", "Content-Type", "text/plain"), http.StatusBadRequest)
	checkError(t, e.do("PUT", "/v1/secrets/"+id, `{"payload":"x"}`, "Content-Type", "application/json"), http.StatusUnsupportedMediaType)
	checkError(t, e.do("PUT", "/v1/secrets/"+id, "x"), http.StatusUnsupportedMediaType)
	checkError(t, e.do("PUT", "/v1/secrets/"+id, "x", "Content-Type", "application/pkcs8"), http.StatusUnsupportedMediaType)
	checkError(t, e.do("PUT", "/v1/secrets/"+id, "x", "Content-Type", "application/octet-stream", "Content-Encoding", "gzip"), http.StatusBadRequest)
	checkError(t, e.do("PUT", "/v1/secrets/"+id, "!!", "Content-Type", "application/octet-stream", "Content-Encoding", "base64"), http.StatusBadRequest)
	checkError(t, e.do("PUT", "/v1/secrets/"+id, strings.Repeat("a", 20001), "Content-Type", "text/plain"), http.StatusRequestEntityTooLarge)
	// Still no payload after all that.
	checkError(t, e.do("GET", "/v1/secrets/"+id+"/payload", nil), http.StatusNotFound)
	e.must(http.StatusNoContent, "PUT", "/v1/secrets/"+id, strings.Repeat("a", 20000), "Content-Type", "text/plain")
}

func TestDeleteSecret(t *testing.T) {
	e := newEnv(t)
	id := e.createText("gone", "x")
	r := e.must(http.StatusNoContent, "DELETE", "/v1/secrets/"+id, nil)
	if len(r.Body) != 0 {
		t.Errorf("body %q", r.Body)
	}
	checkError(t, e.do("GET", "/v1/secrets/"+id, nil), http.StatusNotFound)
	checkError(t, e.do("DELETE", "/v1/secrets/"+id, nil), http.StatusNotFound)
}

func TestDeleteSecretWithConsumers(t *testing.T) {
	e := newEnv(t)
	admin := kms.Identity{Project: "p1", User: "u1", Roles: []string{"admin"}}
	id := e.createText("in-use", "x")
	c := kms.Consumer{Service: "nova", ResourceType: "instance", ResourceID: "vm-1"}
	if _, err := e.svc.AddConsumer(context.Background(), admin, id, c); err != nil {
		t.Fatal(err)
	}
	v12 := []string{"OpenStack-API-Version", "key-manager 1.2"}
	checkError(t, e.do("DELETE", "/v1/secrets/"+id, nil, v12...), http.StatusConflict)
	checkError(t, e.do("DELETE", "/v1/secrets/"+id+"?force=maybe", nil, v12...), http.StatusBadRequest)
	checkError(t, e.do("DELETE", "/v1/secrets/"+id+"?force=false", nil, v12...), http.StatusConflict)
	// Below 1.2 force is not a parameter: kms decides without it.
	checkError(t, e.do("DELETE", "/v1/secrets/"+id+"?force=true", nil), http.StatusConflict)
	checkError(t, e.do("DELETE", "/v1/secrets/"+id+"?force=maybe", nil), http.StatusConflict)
	e.must(http.StatusNoContent, "DELETE", "/v1/secrets/"+id+"?force=True", nil, v12...)
	checkError(t, e.do("GET", "/v1/secrets/"+id, nil), http.StatusNotFound)
}

func TestUnknownRouteIs404AndWrongMethodIs405(t *testing.T) {
	e := newEnv(t)
	checkError(t, e.do("GET", "/v2/secrets", nil), http.StatusNotFound)
	checkError(t, e.do("GET", "/v1/nothing", nil), http.StatusNotFound)
	checkError(t, e.do("GET", "/v1secrets", nil), http.StatusNotFound)
	id := e.createText("x", "y")
	checkError(t, e.do("GET", "/v1/secrets/"+id+"/other", nil), http.StatusNotFound)
	checkError(t, e.do("PUT", "/v1/secrets", "x", "Content-Type", "text/plain"), http.StatusMethodNotAllowed)
	checkError(t, e.do("POST", "/v1/secrets/"+id, map[string]any{}), http.StatusMethodNotAllowed)
	checkError(t, e.do("PATCH", "/v1/secrets/"+id, map[string]any{}), http.StatusMethodNotAllowed)
	checkError(t, e.do("DELETE", "/", nil), http.StatusMethodNotAllowed)
	checkError(t, e.do("POST", "/v1/secrets/"+id+"/metadata/k", map[string]any{}), http.StatusMethodNotAllowed)
}

func TestInternalErrorIsGenericAndLogged(t *testing.T) {
	e := newEnv(t)
	id := e.createText("x", "the-payload-value")
	e.store.Close()
	r := e.do("GET", "/v1/secrets/"+id, nil)
	checkError(t, r, http.StatusInternalServerError)
	if !strings.Contains(string(r.Body), "contact the site administrator") || strings.Contains(string(r.Body), "closed") {
		t.Errorf("500 body %s", r.Body)
	}
	r = e.do("POST", "/v1/secrets", map[string]any{"payload": "another-payload-value", "payload_content_type": "text/plain"})
	checkError(t, r, http.StatusInternalServerError)
	logs := e.logs.String()
	if !strings.Contains(logs, "request failed") || !strings.Contains(logs, "closed") {
		t.Errorf("the cause was not logged: %s", logs)
	}
	if strings.Contains(logs, "payload-value") {
		t.Error("a payload reached the logs")
	}
}

func TestCreatePayloadWithJSONEscapes(t *testing.T) {
	e := newEnv(t)
	body := `{"payload": "p\u00e9\"q\\\ttab", "payload_content_type": "text/plain"}`
	r := e.must(http.StatusCreated, "POST", "/v1/secrets", body, "Content-Type", "application/json")
	id := idOfRef(t, r.JSON(t)["secret_ref"].(string))
	if got := e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload", nil).Body; string(got) != "pé\"q\\\ttab" {
		t.Errorf("payload %q", got)
	}
	if strings.Contains(e.logs.String(), "tab") {
		t.Error("a payload reached the logs")
	}
}
