package barbican

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Secret consumers: /v1/secrets/{id}/consumers, GET (paged), POST and
// DELETE with {"service", "resource_type", "resource_id"}. POST and DELETE
// answer 200 with the secret. Both are idempotent: adding a consumer twice
// is one consumer, removing an absent one is not an error (Barbican answers
// 404 there; retrying services should not have to care). Removing the last
// consumer of an on_last_consumer secret destroys it; the answer is then
// the secret as it was last, and the secret is gone.

// destroyedHeader marks a DELETE that destroyed the secret by its policy.
const destroyedHeader = "Keywarden-Secret-Destroyed"

// consumerBody is one consumer as the consumers resource lists it.
type consumerBody struct {
	Created      string `json:"created"`
	Updated      string `json:"updated"`
	Status       string `json:"status"`
	Service      string `json:"service"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
}

// consumerView renders a consumer; it is never changed in place, so
// updated is created.
func consumerView(c kms.Consumer) consumerBody {
	t := formatTime(c.Created)
	return consumerBody{Created: t, Updated: t, Status: "ACTIVE",
		Service: c.Service, ResourceType: c.ResourceType, ResourceID: c.ResourceID}
}

type consumerList struct {
	Consumers []consumerBody `json:"consumers"`
	Previous  string         `json:"previous,omitempty"`
	Next      string         `json:"next,omitempty"`
	Total     int            `json:"total"`
}

func (a *api) listConsumers(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p := parsePage(r)
	cs, total, err := a.svc.ListConsumers(r.Context(), identity(r), id, p.Offset, p.Limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := consumerList{Consumers: make([]consumerBody, 0, len(cs)), Total: total}
	for _, c := range cs {
		out.Consumers = append(out.Consumers, consumerView(c))
	}
	out.Previous, out.Next = a.pageLinks(r, "secrets/"+id+"/consumers", p, total)
	writeJSON(w, http.StatusOK, out)
}

// readConsumer reads a consumer body. Members other than the three are
// ignored, so newer clients' additions do not break.
func readConsumer(r *http.Request) (kms.Consumer, error) {
	obj, body, err := readJSONObject(r)
	defer crypto.Zero(body)
	if err != nil {
		return kms.Consumer{}, err
	}
	return consumerOf(obj, "")
}

// consumerOf reads the three consumer members of obj; where names the
// object in messages ("consumer." inside a larger body).
func consumerOf(obj map[string]json.RawMessage, where string) (kms.Consumer, error) {
	var c kms.Consumer
	for _, f := range []struct {
		key string
		dst *string
	}{{"service", &c.Service}, {"resource_type", &c.ResourceType}, {"resource_id", &c.ResourceID}} {
		s, ok, err := jsonString(obj, f.key)
		if err != nil {
			return c, kms.Invalid("'%s%s' must be a string", where, f.key)
		}
		if !ok || strings.TrimSpace(s) == "" {
			return c, kms.Invalid("'%s%s' is a required property", where, f.key)
		}
		*f.dst = strings.TrimSpace(s)
	}
	return c, nil
}

func (a *api) addConsumer(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := readConsumer(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sec, err := a.svc.AddConsumer(r.Context(), identity(r), id, c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", a.secretRef(r, id)+"/consumers")
	writeJSON(w, http.StatusOK, a.secretBody(r, sec))
}

func (a *api) removeConsumer(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := readConsumer(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sec, destroyed, err := a.svc.RemoveConsumer(r.Context(), identity(r), id, c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if destroyed {
		// A header, not a body member: 1.0 clients must see Barbican's body.
		w.Header().Set(destroyedHeader, "true")
	}
	writeJSON(w, http.StatusOK, a.secretBody(r, sec))
}
