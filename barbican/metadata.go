package barbican

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/kms"
)

// Secret user metadata: /v1/secrets/{id}/metadata and
// /v1/secrets/{id}/metadata/{key}. Key syntax and lowercasing are kms's.

type metadataBody struct {
	Metadata map[string]string `json:"metadata"`
}

type metadataRefBody struct {
	MetadataRef string `json:"metadata_ref"`
}

type metadatumBody struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (a *api) metadataRef(r *http.Request, id string) string {
	return a.ref(r, "secrets", id, "metadata")
}

func (a *api) getMetadata(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m, err := a.svc.GetMetadata(r.Context(), identity(r), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if m == nil {
		m = map[string]string{}
	}
	writeJSON(w, http.StatusOK, metadataBody{Metadata: m})
}

// putMetadata replaces all metadata: {"metadata": {key: value, ...}}.
func (a *api) putMetadata(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	obj, _, err := readJSONObject(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	raw, ok, err := jsonObject(obj, "metadata")
	if err == nil && !ok {
		err = kms.Invalid("'metadata' is a required property")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) != nil {
			a.fail(w, r, kms.Invalid("Invalid Metadata. Keys and Values must be Strings."))
			return
		}
		m[k] = strings.TrimSpace(s)
	}
	if _, err := a.svc.ReplaceMetadata(r.Context(), identity(r), id, m); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, metadataRefBody{MetadataRef: a.metadataRef(r, id)})
}

// metadatum reads a {"key": ..., "value": ...} body; nothing else allowed.
func metadatum(r *http.Request) (metadatumBody, error) {
	obj, _, err := readJSONObject(r)
	if err != nil {
		return metadatumBody{}, err
	}
	if err := onlyKeys(obj, "key", "value"); err != nil {
		return metadatumBody{}, err
	}
	var m metadatumBody
	for _, f := range []struct {
		name string
		dst  *string
	}{{"key", &m.Key}, {"value", &m.Value}} {
		s, ok, err := jsonString(obj, f.name)
		if err == nil && !ok {
			err = kms.Invalid("'%s' is a required property", f.name)
		}
		if err != nil {
			return metadatumBody{}, err
		}
		*f.dst = strings.TrimSpace(s)
	}
	return m, nil
}

// postMetadatum adds one key: 201 {"key","value"}; an existing key is 409.
func (a *api) postMetadatum(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m, err := metadatum(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.svc.SetMetadatum(r.Context(), identity(r), id, m.Key, m.Value, true); err != nil {
		a.fail(w, r, err)
		return
	}
	m.Key = kms.MetadataKey(m.Key) // as stored
	w.Header().Set("Location", a.metadataRef(r, id)+"/"+m.Key)
	writeJSON(w, http.StatusCreated, m)
}

func (a *api) getMetadatum(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	key := routeVar(r, "key")
	v, err := a.svc.GetMetadatum(r.Context(), identity(r), id, key)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, metadatumBody{Key: kms.MetadataKey(key), Value: v})
}

// putMetadatum changes an existing key: 200 {"key","value"}. The body's key
// must name the key in the URL (409 otherwise, 404 first if the URL's key
// does not exist, as in Barbican).
func (a *api) putMetadatum(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	key := routeVar(r, "key")
	m, err := metadatum(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !strings.EqualFold(m.Key, key) {
		if _, err := a.svc.GetMetadatum(r.Context(), identity(r), id, key); err != nil {
			a.fail(w, r, err)
			return
		}
		a.fail(w, r, kms.Conflict("Key in request data does not match key in the request url."))
		return
	}
	if err := a.svc.SetMetadatum(r.Context(), identity(r), id, key, m.Value, false); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, metadatumBody{Key: kms.MetadataKey(key), Value: m.Value})
}

func (a *api) deleteMetadatum(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.svc.DeleteMetadatum(r.Context(), identity(r), id, routeVar(r, "key")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
