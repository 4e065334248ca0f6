package barbican

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// The hand-written fast paths of the hot requests must answer exactly what
// encoding/json and mux's regexps answer.

var splitCases = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":1,"a":2}`, `{"a" : "x" , "b":[1,{"c":"}"}],"d":{"e":[]}}`,
	`{"pay\"load":"a\\\"b","k\u00e9y":"v","emoji":"😀","n":-12.5e3,"t":true,"f":false,"z":null}`,
	"{\n\t\"name\": \"bench\",\r\n \"payload\": \"QUJD\\nREVG\"\n}\n",
	`{"a":"\ud800"}`, `{"\ud83d\ude00":1}`, `{"x":"}{][,:"}`, `{"x":{"y":{"z":["]"]}}}`,
	`null`, `[]`, `[{"a":1}]`, `"s"`, `12`, `true`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, ``, `{`, `{"a":1}}`,
	"{\"bad\xff\":\"\xfe\"}",
}

func TestSplitObjectMatchesEncodingJSON(t *testing.T) {
	for _, c := range splitCases {
		var want map[string]json.RawMessage
		werr := json.Unmarshal([]byte(c), &want)
		var got map[string]json.RawMessage
		if json.Valid([]byte(c)) {
			got = splitObject([]byte(c))
		}
		if (werr != nil || want == nil) != (got == nil) {
			t.Errorf("%q: splitObject %v, json.Unmarshal %v, %v", c, got, want, werr)
			continue
		}
		if got == nil {
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%q: %d members, want %d", c, len(got), len(want))
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok || !bytes.Equal(bytes.TrimSpace(g), bytes.TrimSpace(w)) {
				t.Errorf("%q: member %q = %q, want %q", c, k, g, w)
			}
			var gv, wv any
			json.Unmarshal(g, &gv)
			json.Unmarshal(w, &wv)
			if !reflect.DeepEqual(gv, wv) {
				t.Errorf("%q: member %q decodes to %v, want %v", c, k, gv, wv)
			}
		}
	}
}

func FuzzSplitObject(f *testing.F) {
	for _, c := range splitCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, c string) {
		var want map[string]json.RawMessage
		werr := json.Unmarshal([]byte(c), &want)
		var got map[string]json.RawMessage
		if json.Valid([]byte(c)) {
			got = splitObject([]byte(c))
		}
		if (werr != nil || want == nil) != (got == nil) {
			t.Fatalf("%q: splitObject %v, json.Unmarshal %v, %v", c, got, want, werr)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, want %d", c, len(got), len(want))
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || !bytes.Equal(bytes.TrimSpace(g), bytes.TrimSpace(w)) {
				t.Fatalf("%q: member %q = %q, want %q", c, k, g, w)
			}
		}
	})
}

func TestJSONStringAndIntMatchEncodingJSON(t *testing.T) {
	for _, raw := range []string{`"abc"`, `" a b "`, `"a\"b"`, `"\u00e9"`, `"é"`, "\"\xff\"", `""`, ` "x" `,
		`0`, `-0`, `7`, `-7`, `256`, `123456789012345`, `1234567890123456789`, `99999999999999999999`,
		`1.5`, `1e3`, `-`, `true`, `null`, `[1]`, `{}`} {
		obj := map[string]json.RawMessage{"k": json.RawMessage(raw)}
		var ws string
		werr := json.Unmarshal([]byte(raw), &ws)
		gs, ok, gerr := jsonString(obj, "k")
		if raw != "null" && ((werr == nil) != (gerr == nil) || (werr == nil && (gs != ws || !ok))) {
			t.Errorf("jsonString(%s) = %q, %v; json says %q, %v", raw, gs, gerr, ws, werr)
		}
		var wn int
		werr = json.Unmarshal([]byte(raw), &wn)
		gn, ok, gerr := jsonInt(obj, "k")
		if raw != "null" && ((werr == nil) != (gerr == nil) || (werr == nil && (gn != wn || !ok))) {
			t.Errorf("jsonInt(%s) = %d, %v; json says %d, %v", raw, gn, gerr, wn, werr)
		}
	}
}

// TestPathTemplateMatchesMux compares the regexp-free route matcher with
// the mux Path matcher it replaces.
func TestPathTemplateMatchesMux(t *testing.T) {
	tpls := []string{"/", "/v1", "/v1/secrets", "/v1/secrets/{id}", "/v1/secrets/{id}/payload",
		"/v1/secrets/{id}/metadata/{key}"}
	paths := []string{"/", "", "//", "/v1", "/v1/", "/v2", "/v1/secrets", "/v1/secretsx", "/v1/secrets/",
		"/v1/secrets/abc", "/v1/secrets/a b/payload", "/v1/secrets//payload", "/v1/secrets/abc/payload",
		"/v1/secrets/abc/payload/", "/v1/secrets/abc/payloadx", "/v1/secrets/abc/metadata/k",
		"/v1/secrets/abc/metadata/", "/v1/secrets/abc/metadata/k/x", "/v1/secrets/é\xff/payload", "//v1/secrets"}
	for _, tpl := range tpls {
		route := mux.NewRouter().SkipClean(true).Path(tpl)
		pt := newPathTemplate(tpl)
		for _, p := range paths {
			req := &http.Request{Method: "GET", URL: mustURL(p)}
			var wm, gm mux.RouteMatch
			want := route.Match(req, &wm)
			got := pt.match(req, &gm)
			if got != want || (got && len(gm.Vars)+len(wm.Vars) > 0 && !reflect.DeepEqual(gm.Vars, wm.Vars)) {
				t.Errorf("%s on %q: %v %v, mux says %v %v", tpl, p, got, gm.Vars, want, wm.Vars)
			}
		}
	}
}

func TestWriteJSONRefFastPathMatchesEncoder(t *testing.T) {
	for _, ref := range []string{"http://127.0.0.1:9311/v1/secrets/0d3f1c0e-0000-4000-8000-000000000000",
		"https://kms.example/v1/secrets/x?a=1&b=<2>", `http://h"/v1/secrets/x`, `http://h\/v1`, "http://hé/v1", "http://h\x7f/v1", "\u2028"} {
		w1 := &benchWriter{h: http.Header{}}
		rec := &recordingWriter{benchWriter: w1}
		writeJSON(rec, 201, secretRefBody{SecretRef: ref})
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(secretRefBody{SecretRef: ref})
		if rec.body.String() != buf.String() || w1.h.Get("Content-Length") != strconv.Itoa(buf.Len()) {
			t.Errorf("ref %q: wrote %q, encoder %q", ref, rec.body.String(), buf.String())
		}
	}
}

type recordingWriter struct {
	*benchWriter
	body bytes.Buffer
}

func (w *recordingWriter) Write(p []byte) (int, error) { return w.body.Write(p) }

func TestRefMatchesConcatenation(t *testing.T) {
	for _, href := range []string{"", "https://kms.example:9311"} {
		a := &api{hostHref: href}
		for _, hdr := range []string{"", "HTTPS", " http ", "ftp"} {
			r := &http.Request{Host: "h:1", Header: http.Header{}}
			if hdr != "" {
				r.Header.Set("X-Forwarded-Proto", hdr)
			}
			for _, parts := range [][]string{nil, {"secrets"}, {"secrets", "x"}, {"secrets", "x", "metadata"}} {
				want := a.baseURL(r) + "/v1/" + strings.Join(parts, "/")
				if got := a.ref(r, parts...); got != want {
					t.Errorf("ref(%q, %v) = %q, want %q", hdr, parts, got, want)
				}
			}
		}
	}
}
