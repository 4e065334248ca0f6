package barbican

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Secrets: /v1/secrets and /v1/secrets/{id}[/payload].

func (a *api) registerSecrets(r *mux.Router) {
	// The two hot routes first: routes are tried in order.
	a.route(r, http.MethodGet, "/v1/secrets/{id}/payload", a.getSecretPayload)
	a.route(r, http.MethodPost, "/v1/secrets", a.createSecret)
	a.route(r, http.MethodGet, "/v1/secrets", a.listSecrets)
	a.route(r, http.MethodGet, "/v1/secrets/{id}", a.getSecret)
	a.route(r, http.MethodPut, "/v1/secrets/{id}", a.putSecretPayload)
	a.route(r, http.MethodDelete, "/v1/secrets/{id}", a.deleteSecret)
}

// secretID is the {id} of a secret route.
func secretID(r *http.Request) (string, error) { return pathUUID(r, "id", "secret") }

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

// The payload content types Barbican accepts, in their stored form.
const (
	ctText   = "text/plain"
	ctBinary = "application/octet-stream"
	ctPKCS8  = "application/pkcs8"
)

var supportedContentTypes = []string{ctText, ctText + ";charset=utf-8", ctBinary, ctPKCS8}

// normalizeContentType maps a payload content type to its stored form
// (every UTF-8 spelling of plain text is "text/plain"); "" when it is not
// one Barbican supports.
func normalizeContentType(ct string) string {
	switch ct { // already in the stored form
	case ctText, ctBinary, ctPKCS8:
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
	case ctText, ctBinary, ctPKCS8:
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

// ---- POST /v1/secrets

func (a *api) createSecret(w http.ResponseWriter, r *http.Request) {
	obj, body, err := readJSONObject(r)
	defer crypto.Zero(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer crypto.Zero(obj["payload"])
	req, scrub, err := createRequest(obj)
	defer func() {
		for _, b := range scrub {
			crypto.Zero(b)
		}
	}()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sec, err := a.svc.CreateSecret(r.Context(), identity(r), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ref := a.secretRef(r, sec.ID)
	w.Header().Set("Location", ref)
	writeJSON(w, http.StatusCreated, secretRefBody{SecretRef: ref})
}

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
	case ct == ctText && hasEncoding:
		return req, scrub, kms.Invalid("payload_content_encoding is not one of None: a text/plain payload takes no encoding")
	case ct != ctText && !hasEncoding:
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

// ---- GET /v1/secrets/{id}

// getSecret answers the secret's metadata, or, for Barbican's legacy
// clients, its payload when Accept asks for something other than JSON.
func (a *api) getSecret(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if accept := r.Header.Get("Accept"); !wantsMetadata(accept) {
		a.writePayload(w, r, id, accept)
		return
	}
	sec, err := a.svc.GetSecret(r.Context(), identity(r), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.secretBody(r, sec))
}

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

// ---- GET /v1/secrets/{id}/payload

func (a *api) getSecretPayload(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	want := ""
	if r.URL.RawQuery != "" {
		want = r.URL.Query().Get("payload_content_type") // legacy form of Accept
	}
	if want == "" {
		want = r.Header.Get("Accept")
	}
	a.writePayload(w, r, id, want)
}

func (a *api) writePayload(w http.ResponseWriter, r *http.Request, id, accept string) {
	sec, pt, err := a.svc.GetPayload(r.Context(), identity(r), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer crypto.Zero(pt)
	ct, err := payloadType(accept, sec.ContentType, pt)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h["Content-Type"] = payloadContentType(ct)
	h["Content-Length"] = []string{strconv.Itoa(len(pt))}
	h["Cache-Control"] = noStore
	w.WriteHeader(http.StatusOK)
	w.Write(pt)
}

// Header values of payload responses, shared (net/http only reads them).
var (
	noStore       = []string{"no-store"}
	payloadCTText = []string{ctText + "; charset=utf-8"}
	payloadCTBin  = []string{ctBinary}
	payloadCTKey  = []string{ctPKCS8}
)

// payloadContentType is the Content-Type header of a payload served as ct.
func payloadContentType(ct string) []string {
	switch ct {
	case ctText:
		return payloadCTText
	case ctBinary:
		return payloadCTBin
	case ctPKCS8:
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
		stored = ctBinary
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
	case ctBinary, ctPKCS8:
		return accept, nil
	case ctText:
		if utf8.Valid(pt) {
			return ctText, nil
		}
	}
	for _, mr := range parseAccept(accept) {
		if mr.typ == "*/*" || (strings.HasSuffix(mr.typ, "/*") && strings.HasPrefix(stored, strings.TrimSuffix(mr.typ, "*"))) {
			return stored, nil
		}
		ct := normalizeContentType(mime.FormatMediaType(mr.typ, mr.params))
		if ct == "" || (ct == ctText && !utf8.Valid(pt)) {
			continue
		}
		return ct, nil
	}
	return "", statusError(http.StatusNotAcceptable,
		"Wrong payload content-type: %s cannot be served as %q", stored, accept)
}

// ---- PUT /v1/secrets/{id}: the second step of a two-step creation

func (a *api) putSecretPayload(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ct := mediaType(r.Header.Get("Content-Type"))
	if ct != ctText && ct != ctBinary {
		a.fail(w, r, statusError(http.StatusUnsupportedMediaType,
			"Content-Type of '%s' is not supported for PUT.", r.Header.Get("Content-Type")))
		return
	}
	body, err := readBody(r)
	defer crypto.Zero(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	payload := body
	if ct == ctBinary {
		switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
		case "":
		case "base64":
			decoded, err := decodeBase64(body)
			if err != nil {
				a.fail(w, r, kms.Invalid("Problem decoding payload: it is not valid base64"))
				return
			}
			defer crypto.Zero(decoded)
			payload = decoded
		default:
			a.fail(w, r, kms.Invalid("Text-based binary secret payloads must specify a content-encoding of 'base64'"))
			return
		}
	}
	if err := a.svc.PutPayload(r.Context(), identity(r), id, payload, ct); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- DELETE /v1/secrets/{id}

func (a *api) deleteSecret(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	force := false
	if microversionOf(r) >= forceDeleteMicroversion {
		if v, ok := r.URL.Query()["force"]; ok {
			if force, ok = parseBool(v[len(v)-1]); !ok {
				a.fail(w, r, errBadQuery)
				return
			}
		}
	}
	if err := a.svc.DeleteSecret(r.Context(), identity(r), id, force); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

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

// ---- GET /v1/secrets

func (a *api) listSecrets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lq := kms.ListQuery{
		Name: q.Get("name"), Algorithm: q.Get("alg"), Mode: q.Get("mode"),
		Type:    kms.SecretType(q.Get("secret_type")),
		ACLOnly: strings.EqualFold(q.Get("acl_only"), "true"),
	}
	if bits, err := strconv.Atoi(q.Get("bits")); err == nil && bits > 0 {
		lq.BitLength = bits // an unparsable bits is ignored, as in Barbican
	}
	for _, f := range []struct {
		param string
		dst   *[]kms.TimeFilter
	}{{"created", &lq.Created}, {"updated", &lq.Updated}, {"expiration", &lq.Expiration}} {
		if v := q.Get(f.param); v != "" {
			filters, ok := parseDateFilters(v)
			if !ok {
				a.fail(w, r, errBadQuery)
				return
			}
			*f.dst = filters
		}
	}
	if v := q.Get("sort"); v != "" {
		keys, ok := parseSort(v)
		if !ok {
			a.fail(w, r, errBadQuery)
			return
		}
		lq.Sort = keys
	}
	p := parsePage(r)
	lq.Offset, lq.Limit = p.Offset, p.Limit

	secs, total, err := a.svc.ListSecrets(r.Context(), identity(r), lq)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := secretList{Secrets: make([]secretBody, 0, len(secs)), Total: total}
	for _, s := range secs {
		out.Secrets = append(out.Secrets, a.secretBody(r, s))
	}
	if len(secs) > 0 { // Barbican links only non-empty pages
		out.Previous, out.Next = a.pageLinks(r, "secrets", p, total)
	}
	writeJSON(w, http.StatusOK, out)
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
