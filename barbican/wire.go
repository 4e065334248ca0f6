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
	var body []byte
	if ref, ok := v.(secretRefBody); ok && plainJSONString(ref.SecretRef) {
		// The answer to every create, without reflection; the bytes
		// the encoder below would write.
		body = make([]byte, 0, len(`{"secret_ref":""}`+"\n")+len(ref.SecretRef))
		body = append(body, `{"secret_ref":"`...)
		body = append(body, ref.SecretRef...)
		body = append(body, "\"}\n"...)
	} else {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			buf.Reset()
			buf.WriteString(`{"code": 500, "title": "Internal Server Error", "description": "` + internalDescription + `"}`)
			status = http.StatusInternalServerError
		}
		body = buf.Bytes()
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

// jsonContentType is shared by every JSON answer (net/http only reads it).
var jsonContentType = []string{"application/json"}

// plainJSONString reports whether s is written by encoding/json (HTML
// escaping off) as itself between quotes: printable ASCII other than '"'
// and '\\'.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
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
	switch v { // the usual spellings, already in the parsed form
	case "application/json", kms.ContentTypeText, kms.ContentTypeBinary:
		return v
	}
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
	if !json.Valid(body) {
		return nil, body, kms.Invalid("Malformed JSON")
	}
	if obj = splitObject(body); obj == nil {
		return nil, body, kms.Invalid("Malformed JSON")
	}
	return obj, body, nil
}

// splitObject splits a JSON object into its members, as json.Unmarshal
// into a map[string]json.RawMessage does (the last of duplicate keys wins),
// without copying: each value is a subslice of data (capacity clipped), so
// zeroing data zeroes them too. data must be valid JSON (json.Valid); nil
// when it is not an object.
func splitObject(data []byte) map[string]json.RawMessage {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil
	}
	obj := make(map[string]json.RawMessage, 8)
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return obj
	}
	for i < len(data) && data[i] == '"' {
		end := jsonValueEnd(data, i)
		key, ok := jsonKey(data[i:end])
		if !ok {
			return nil
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return nil
		}
		i = skipSpace(data, i+1)
		end = jsonValueEnd(data, i)
		if end <= i {
			return nil
		}
		obj[key] = data[i:end:end]
		i = skipSpace(data, end)
		if i >= len(data) {
			return nil
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return obj
		default:
			return nil
		}
	}
	return nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// jsonValueEnd is the index just past the JSON value starting at data[i]
// (len(data) when it runs off the end).
func jsonValueEnd(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(data)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = jsonValueEnd(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	}
	j := i
	for j < len(data) {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
		j++
	}
	return j
}

// jsonKey decodes a member name (a JSON string, quotes included).
func jsonKey(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if k, ok := commonKeys[string(inner)]; ok {
		return k, true // no allocation for the members every request has
	}
	if simpleJSONString(inner) {
		return string(inner), true
	}
	var k string
	if json.Unmarshal(raw, &k) != nil {
		return "", false
	}
	return k, true
}

// commonKeys interns the member names of secret creation bodies.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"name", "secret_type", "algorithm", "bit_length", "mode", "expiration",
		"payload", "payload_content_type", "payload_content_encoding", "metadata"} {
		m[k] = k
	}
	return m
}()

// simpleJSONString: the inside of a JSON string that decodes to itself (no
// escapes; valid UTF-8, which json would otherwise replace with U+FFFD).
func simpleJSONString(inner []byte) bool {
	return bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner)
}

// Typed members of a JSON object. A member that is absent or null reads as
// absent (ok false); a member of the wrong type is Invalid.

func jsonString(obj map[string]json.RawMessage, key string) (s string, ok bool, err error) {
	raw, found := obj[key]
	if !found || isNull(raw) {
		return "", false, nil
	}
	if t := bytes.TrimSpace(raw); len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' && simpleJSONString(t[1:len(t)-1]) {
		return string(t[1 : len(t)-1]), true, nil
	}
	if s, err = unmarshalString(raw); err != nil {
		return "", false, kms.Invalid("'%s' must be a string", key)
	}
	return s, true, nil
}

func jsonInt(obj map[string]json.RawMessage, key string) (n int, ok bool, err error) {
	raw, found := obj[key]
	if !found || isNull(raw) {
		return 0, false, nil
	}
	if v, ok := plainInt(bytes.TrimSpace(raw)); ok {
		return v, true, nil
	}
	if n, err = unmarshalInt(raw); err != nil {
		return 0, false, kms.Invalid("'%s' must be an integer", key)
	}
	return n, true, nil
}

// unmarshalString and unmarshalInt keep the variable that encoding/json
// decodes into off the fast paths' frames (it escapes to the heap).
func unmarshalString(raw []byte) (s string, err error) {
	err = json.Unmarshal(raw, &s)
	return s, err
}

func unmarshalInt(raw []byte) (n int, err error) {
	err = json.Unmarshal(raw, &n)
	return n, err
}

// plainInt reads a JSON integer of digits (and a leading minus) that
// surely fits an int; anything else is left to encoding/json.
func plainInt(raw []byte) (int, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if raw[0] == '-' {
		n = -n
	}
	return n, true
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
	if !json.Valid(raw) {
		return nil, false, kms.Invalid("'%s' must be an object", key)
	}
	if m = splitObject(raw); m == nil {
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
	if inner := raw[1 : len(raw)-1]; simpleJSONString(inner) {
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
