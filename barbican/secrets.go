package barbican

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Secrets: /v1/secrets and /v1/secrets/{id}[/payload]. The handlers; bodies,
// content types and query parsing are in secrets_wire.go.

// secretID is the {id} of a secret route.
func secretID(r *http.Request) (string, error) { return pathUUID(r, "id", "secret") }

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
	sec, err := a.svc.GetSecret(r.Context(), identity(r), id, kms.View{})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.secretBody(r, sec))
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
	stored, pt, err := a.svc.ExportPayload(r.Context(), identity(r), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer crypto.Zero(pt)
	ct, err := payloadType(accept, stored, pt)
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

// ---- PUT /v1/secrets/{id}: the second step of a two-step creation

func (a *api) putSecretPayload(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ct := mediaType(r.Header.Get("Content-Type"))
	if ct != kms.ContentTypeText && ct != kms.ContentTypeBinary {
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
	if ct == kms.ContentTypeBinary {
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
