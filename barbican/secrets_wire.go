package barbican

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// The wire side of /v1/secrets: response bodies, payload content types,
// the creation body, Accept negotiation and query parameters. The handlers
// are in secrets.go; generic JSON and body helpers in wire.go.

// ---- wire types

// secretBody is a secret as Barbican shows it, fields in Barbican's order.
// Absent optional fields are JSON null, as Barbican sends them. Consumers
// exist only from microversion 1.1: 1.0 clients fail on unknown keys.
type secretBody struct {
	Created      string            `json:"created"`
	Updated      string            `json:"updated"`
	Status       string            `json:"status"`
	Name         *string           `json:"name"`
	SecretType   string            `json:"secret_type"`
	Expiration   *string           `json:"expiration"`
	Algorithm    *string           `json:"algorithm"`
	BitLength    *int              `json:"bit_length"`
	Mode         *string           `json:"mode"`
	CreatorID    *string           `json:"creator_id"`
	Consumers    *[]secretConsumer `json:"consumers,omitempty"`
	ContentTypes map[string]string `json:"content_types,omitempty"`
	SecretRef    string            `json:"secret_ref"`
}

// secretConsumer is a consumer as listed in a secret (and by the secret
// consumers resource).
type secretConsumer struct {
	Service      string `json:"service"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
}

type secretRefBody struct {
	SecretRef string `json:"secret_ref"`
}

// secretList is a page of secrets; previous and next only when they exist.
type secretList struct {
	Secrets  []secretBody `json:"secrets"`
	Previous string       `json:"previous,omitempty"`
	Next     string       `json:"next,omitempty"`
	Total    int          `json:"total"`
}

// secretStatus: Barbican shows every live secret ACTIVE; the KMIP states
// behind it are not part of this protocol.
const secretStatus = "ACTIVE"

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func (a *api) secretBody(r *http.Request, s *kms.Secret) secretBody {
	b := secretBody{
		Created: formatTime(s.Created), Updated: formatTime(s.Updated), Status: secretStatus,
		Name: optString(s.Name), SecretType: string(s.Type), Expiration: formatTimePtr(s.Expiration),
		Algorithm: optString(s.Algorithm), BitLength: optInt(s.BitLength), Mode: optString(s.Mode),
		CreatorID: optString(s.Creator), SecretRef: a.secretRef(r, s.ID),
	}
	if s.HasPayload && s.ContentType != "" {
		b.ContentTypes = map[string]string{"default": s.ContentType}
	}
	if microversionOf(r) >= consumersMicroversion {
		cs := make([]secretConsumer, 0, len(s.Consumers))
		for _, c := range s.Consumers {
			cs = append(cs, secretConsumer{Service: c.Service, ResourceType: c.ResourceType, ResourceID: c.ResourceID})
		}
		b.Consumers = &cs
	}
	return b
}

// ---- payload content types

// The payload content types Barbican accepts, in their stored form (and
// the UTF-8 spelling of text it lists).
var supportedContentTypes = []string{kms.ContentTypeText, kms.ContentTypeTextUTF8, kms.ContentTypeBinary, kms.ContentTypePKCS8}

// normalizeContentType maps a payload content type to its stored form
// (every UTF-8 spelling of plain text is "text/plain"); "" when it is not
// one Barbican supports.
func normalizeContentType(ct string) string {
	switch ct { // already in the stored form
	case kms.ContentTypeText, kms.ContentTypeBinary, kms.ContentTypePKCS8:
		return ct
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return ""
		}
	}
	switch mt {
	case kms.ContentTypeText, kms.ContentTypeBinary, kms.ContentTypePKCS8:
		return mt
	}
	return ""
}

// decodeBase64 decodes standard base64, ignoring line breaks and spaces as
// Python's b64decode does. The caller zeroes the result.
func decodeBase64(src []byte) ([]byte, error) {
	clean := src
	if bytes.ContainsAny(src, " \t\r\n") {
		clean = make([]byte, 0, len(src))
		for _, c := range src {
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				clean = append(clean, c)
			}
		}
		defer crypto.Zero(clean)
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		crypto.Zero(out)
		return nil, err
	}
	return out[:n], nil
}

// ---- POST /v1/secrets: the creation body

// createRequest translates a secret creation body. Like Barbican's
// load_body it strips surrounding whitespace from string fields, the
// payload included. scrub lists the payload buffers the caller must zero.
func createRequest(obj map[string]json.RawMessage) (req kms.CreateRequest, scrub [][]byte, err error) {
	str := func(key string) (string, bool) {
		s, ok, e := jsonString(obj, key)
		if e != nil && err == nil {
			err = e
		}
		return strings.TrimSpace(s), ok
	}
	req.Name, _ = str("name")
	req.Algorithm, _ = str("algorithm")
	req.Mode, _ = str("mode")
	if t, ok := str("secret_type"); ok {
		req.Type = kms.SecretType(t)
	}
	expiration, _ := str("expiration")
	contentType, hasContentType := str("payload_content_type")
	encoding, hasEncoding := str("payload_content_encoding")
	if err != nil {
		return req, nil, err
	}
	bits, hasBits, err := jsonInt(obj, "bit_length")
	if err != nil {
		return req, nil, err
	}
	if hasBits && bits == 0 {
		// kms reads 0 as "no bit length"; on the wire 0 is out of range.
		return req, nil, kms.Invalid("bit_length must be between 1 and 32767")
	}
	req.BitLength = bits
	if expiration != "" {
		t, ok := parseISOTime(expiration)
		if !ok {
			return req, nil, kms.Invalid("Invalid date for 'expiration'")
		}
		req.Expiration = &t
	}
	if hasEncoding && encoding != "base64" {
		return req, nil, kms.Invalid("payload_content_encoding is not one of ['base64']")
	}

	payload, hasPayload, err := jsonStringBytes(obj, "payload")
	if err != nil {
		return req, nil, err
	}
	scrub = append(scrub, payload)
	if !hasPayload {
		if hasContentType {
			return req, scrub, kms.Invalid("payload must be provided when payload_content_type is specified")
		}
		return req, scrub, nil // metadata only; the payload may come with PUT
	}
	if !hasContentType {
		return req, scrub, kms.Invalid("If 'payload' is supplied, 'payload_content_type' must also be supplied.")
	}
	ct := normalizeContentType(contentType)
	switch {
	case ct == "":
		return req, scrub, kms.Invalid("payload_content_type is not one of %s", quoteList(supportedContentTypes))
	case ct == kms.ContentTypeText && hasEncoding:
		return req, scrub, kms.Invalid("payload_content_encoding is not one of None: a text/plain payload takes no encoding")
	case ct != kms.ContentTypeText && !hasEncoding:
		return req, scrub, kms.Invalid("payload_content_encoding is not one of ['base64']: a binary payload must be base64-encoded")
	}
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 {
		return req, scrub, kms.Invalid("If 'payload' specified, must be non empty")
	}
	if hasEncoding {
		decoded, derr := decodeBase64(payload)
		if derr != nil {
			return req, scrub, kms.Invalid("Invalid payload for payload_content_encoding")
		}
		scrub = append(scrub, decoded)
		payload = decoded
	}
	req.Payload, req.ContentType = payload, ct
	return req, scrub, nil
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ---- GET /v1/secrets/{id}[/payload]: metadata or payload, and its content type

// wantsMetadata: no Accept, or a preference for JSON or anything, means
// metadata; a preference for a payload type means the payload.
func wantsMetadata(accept string) bool {
	ranges := parseAccept(accept)
	if len(ranges) == 0 {
		return true
	}
	switch ranges[0].typ {
	case "application/json", "application/*", "*/*":
		return true
	}
	return false
}

// Header values of payload responses, shared (net/http only reads them).
var (
	noStore       = []string{"no-store"}
	payloadCTText = []string{kms.ContentTypeText + "; charset=utf-8"}
	payloadCTBin  = []string{kms.ContentTypeBinary}
	payloadCTKey  = []string{kms.ContentTypePKCS8}
)

// payloadContentType is the Content-Type header of a payload served as ct.
func payloadContentType(ct string) []string {
	switch ct {
	case kms.ContentTypeText:
		return payloadCTText
	case kms.ContentTypeBinary:
		return payloadCTBin
	case kms.ContentTypePKCS8:
		return payloadCTKey
	}
	return []string{ct}
}

// payloadType picks the content type the payload is served as. No Accept
// or */* is the stored type. As in Barbican, any supported type may be
// asked for: the bytes are the same, but text/plain needs them to be UTF-8.
// Nothing acceptable is 406.
func payloadType(accept, stored string, pt []byte) (string, error) {
	if stored == "" {
		stored = kms.ContentTypeBinary
	}
	accept = strings.TrimSpace(accept)
	if accept == "" {
		return stored, nil
	}
	// The common case, one plain media type ("application/octet-stream",
	// "*/*"), without parsing: the same answer as the loop below.
	switch accept {
	case "*/*":
		return stored, nil
	case kms.ContentTypeBinary, kms.ContentTypePKCS8:
		return accept, nil
	case kms.ContentTypeText:
		if utf8.Valid(pt) {
			return kms.ContentTypeText, nil
		}
	}
	for _, mr := range parseAccept(accept) {
		if mr.typ == "*/*" || (strings.HasSuffix(mr.typ, "/*") && strings.HasPrefix(stored, strings.TrimSuffix(mr.typ, "*"))) {
			return stored, nil
		}
		ct := normalizeContentType(mime.FormatMediaType(mr.typ, mr.params))
		if ct == "" || (ct == kms.ContentTypeText && !utf8.Valid(pt)) {
			continue
		}
		return ct, nil
	}
	return "", statusError(http.StatusNotAcceptable,
		"Wrong payload content-type: %s cannot be served as %q", stored, accept)
}

// ---- query parameters

var errBadQuery = kms.Invalid("URI provided invalid query string parameters.")

// parseBool is oslo's strict bool_from_string.
func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, true
	case "0", "f", "false", "off", "n", "no":
		return false, true
	}
	return false, false
}

// parseDateFilters reads Barbican's date filter: comma-separated
// [gt:|gte:|lt:|lte:]ISO-time, at most one lower bound, one upper bound and
// one exact time, and no exact time beside an inclusive bound.
func parseDateFilters(v string) ([]kms.TimeFilter, bool) {
	conflicts := map[string][]string{
		"gt": {"gt", "gte"}, "gte": {"gt", "gte", ""},
		"lt": {"lt", "lte"}, "lte": {"lt", "lte", ""},
		"": {"", "gte", "lte"},
	}
	seen := map[string]bool{}
	var out []kms.TimeFilter
	for f := range strings.SplitSeq(v, ",") {
		op, ts := "", f
		for _, p := range []string{"gt", "gte", "lt", "lte"} {
			if rest, ok := strings.CutPrefix(f, p+":"); ok {
				op, ts = p, rest
				break
			}
		}
		for _, c := range conflicts[op] {
			if seen[c] {
				return nil, false
			}
		}
		t, ok := parseISOTime(strings.TrimSpace(ts))
		if !ok {
			return nil, false
		}
		seen[op] = true
		out = append(out, kms.TimeFilter{Op: op, T: t})
	}
	return out, true
}

// secretSortKeys are the keys Barbican sorts secrets by; "status" is
// accepted and has no effect (every secret is ACTIVE).
var secretSortKeys = []string{"algorithm", "bit_length", "created", "expiration", "mode", "name", "secret_type", "status", "updated"}

// parseSort reads sort=key[:asc|desc],... with each key at most once.
func parseSort(v string) ([]kms.SortKey, bool) {
	seen := map[string]bool{}
	var out []kms.SortKey
	for part := range strings.SplitSeq(v, ",") {
		key, dir, hasDir := strings.Cut(part, ":")
		if !hasDir {
			dir = "asc"
		}
		if !slices.Contains(secretSortKeys, key) || (dir != "asc" && dir != "desc") || seen[key] {
			return nil, false
		}
		seen[key] = true
		if key != "status" {
			out = append(out, kms.SortKey{Field: key, Desc: dir == "desc"})
		}
	}
	return out, true
}
