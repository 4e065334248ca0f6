package barbican

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Request and response bodies: reading under the cap, JSON in and out,
// content-type enforcement and Accept parsing.

// writeJSON answers v as JSON. '&' in refs is not HTML-escaped, as Python's
// json module leaves it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		buf.WriteString(`{"code": 500, "title": "Internal Server Error", "description": "` + internalDescription + `"}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// readBody reads the whole request body; the frame has already capped it
// (MaxBytesReader), and going over the cap is TooLarge. Buffers are grown by
// hand so that no copy of a payload is left behind unzeroed; the caller
// zeroes the result.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1 // +1: see EOF without growing
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			bigger := make([]byte, len(buf), 2*cap(buf))
			copy(bigger, buf)
			crypto.Zero(buf)
			buf = bigger
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			crypto.Zero(buf)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, kms.TooLarge("request body is larger than %d bytes", mbe.Limit)
			}
			return nil, kms.Invalid("cannot read the request body")
		}
	}
}

// mediaType is the lowercased type/subtype of a Content-Type or Accept
// element, parameters dropped ("" when absent or unparsable).
func mediaType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return mt
}

// requireContentType refuses (415) a request whose Content-Type is not one
// of types (Barbican's enforce_content_types).
func requireContentType(r *http.Request, types ...string) error {
	ct := mediaType(r.Header.Get("Content-Type"))
	if !slices.Contains(types, ct) {
		return statusError(http.StatusUnsupportedMediaType,
			"Unexpected content type. Expected content types are: %s", strings.Join(types, ", "))
	}
	return nil
}

// readJSONObject enforces application/json, reads the body and splits the
// top-level object into its members. The caller zeroes body.
func readJSONObject(r *http.Request) (obj map[string]json.RawMessage, body []byte, err error) {
	if err := requireContentType(r, "application/json"); err != nil {
		return nil, nil, err
	}
	body, err = readBody(r)
	if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, body, kms.Invalid("Malformed JSON")
	}
	return obj, body, nil
}

// Typed members of a JSON object. A member that is absent or null reads as
// absent (ok false); a member of the wrong type is Invalid.

func jsonString(obj map[string]json.RawMessage, key string) (s string, ok bool, err error) {
	raw, found := obj[key]
	if !found || isNull(raw) {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, kms.Invalid("'%s' must be a string", key)
	}
	return s, true, nil
}

func jsonInt(obj map[string]json.RawMessage, key string) (n int, ok bool, err error) {
	raw, found := obj[key]
	if !found || isNull(raw) {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false, kms.Invalid("'%s' must be an integer", key)
	}
	return n, true, nil
}

func jsonBool(obj map[string]json.RawMessage, key string) (b bool, ok bool, err error) {
	raw, found := obj[key]
	if !found || isNull(raw) {
		return false, false, nil
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, false, kms.Invalid("'%s' must be a boolean", key)
	}
	return b, true, nil
}

func jsonObject(obj map[string]json.RawMessage, key string) (m map[string]json.RawMessage, ok bool, err error) {
	raw, found := obj[key]
	if !found || isNull(raw) {
		return nil, false, nil
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false, kms.Invalid("'%s' must be an object", key)
	}
	return m, true, nil
}

// jsonStringBytes returns a string member as a fresh byte slice the caller
// can zero. A JSON string without escapes (and valid UTF-8) is copied
// straight from the raw bytes, so no immutable string copy of a payload is
// made; otherwise encoding/json decodes it.
func jsonStringBytes(obj map[string]json.RawMessage, key string) (b []byte, ok bool, err error) {
	raw, found := obj[key]
	if !found || isNull(raw) {
		return nil, false, nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false, kms.Invalid("'%s' must be a string", key)
	}
	if inner := raw[1 : len(raw)-1]; !bytes.ContainsRune(inner, '\\') && utf8.Valid(inner) {
		return bytes.Clone(inner), true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false, kms.Invalid("'%s' must be a string", key)
	}
	return []byte(s), true, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// onlyKeys refuses members other than allowed (JSON schema
// additionalProperties: false).
func onlyKeys(obj map[string]json.RawMessage, allowed ...string) error {
	for k := range obj {
		if !slices.Contains(allowed, k) {
			return kms.Invalid("Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	return nil
}

// mediaRange is one element of an Accept header.
type mediaRange struct {
	typ    string // lowercased type/subtype, e.g. "text/plain", "*/*"
	params map[string]string
	q      float64
}

// parseAccept splits an Accept header into its media ranges, highest
// quality first (stable for equal q); ranges with q=0 are dropped.
func parseAccept(h string) []mediaRange {
	var out []mediaRange
	for part := range strings.SplitSeq(h, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 && v <= 1 {
				q = v
			}
			delete(params, "q")
		}
		if q == 0 {
			continue
		}
		out = append(out, mediaRange{typ: mt, params: params, q: q})
	}
	slices.SortStableFunc(out, func(a, b mediaRange) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	return out
}
