package barbican

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/kms"
)

// Containers: /v1/containers, /v1/containers/{id},
// /v1/containers/{id}/consumers, /v1/containers/{id}/secrets and
// /v1/containers/{id}/acl (container_acls.go), as Barbican has them. POST
// answers 201 {container_ref}; a container document always carries its
// consumers ({name, URL}), at every microversion, as Barbican's always did.
// Consumer POST and DELETE answer 200 with the container; both are
// idempotent, as for secret consumers (Barbican answers 404 to removing an
// absent one). A secret ref POST answers 201 {container_ref}, its DELETE
// 204, as Barbican's.

func containerID(r *http.Request) (string, error) { return pathUUID(r, "id", "container") }

// containerBody is a container as Barbican shows it, fields in its order.
type containerBody struct {
	Created      string                 `json:"created"`
	Updated      string                 `json:"updated"`
	Status       string                 `json:"status"`
	Name         *string                `json:"name"`
	Type         string                 `json:"type"`
	CreatorID    *string                `json:"creator_id"`
	SecretRefs   []containerSecretRef   `json:"secret_refs"`
	Consumers    []containerConsumerRef `json:"consumers"`
	ContainerRef string                 `json:"container_ref"`
}

type containerSecretRef struct {
	Name      *string `json:"name"`
	SecretRef string  `json:"secret_ref"`
}

// containerConsumerRef is a consumer as a container lists it.
type containerConsumerRef struct {
	Name string `json:"name"`
	URL  string `json:"URL"`
}

// containerConsumerBody is a consumer as the consumers resource lists it.
type containerConsumerBody struct {
	Created string `json:"created"`
	Updated string `json:"updated"`
	Status  string `json:"status"`
	Name    string `json:"name"`
	URL     string `json:"URL"`
}

type containerRefBody struct {
	ContainerRef string `json:"container_ref"`
}

type containerList struct {
	Containers []containerBody `json:"containers"`
	Previous   string          `json:"previous,omitempty"`
	Next       string          `json:"next,omitempty"`
	Total      int             `json:"total"`
}

type containerConsumerList struct {
	Consumers []containerConsumerBody `json:"consumers"`
	Previous  string                  `json:"previous,omitempty"`
	Next      string                  `json:"next,omitempty"`
	Total     int                     `json:"total"`
}

func (a *api) containerBody(r *http.Request, c *kms.Container) containerBody {
	b := containerBody{
		Created: formatTime(c.Created), Updated: formatTime(c.Updated), Status: secretStatus,
		Name: optString(c.Name), Type: string(c.Type), CreatorID: optString(c.Creator),
		SecretRefs:   make([]containerSecretRef, 0, len(c.Secrets)),
		Consumers:    make([]containerConsumerRef, 0, len(c.Consumers)),
		ContainerRef: a.ref(r, "containers", c.ID),
	}
	for _, s := range c.Secrets {
		b.SecretRefs = append(b.SecretRefs, containerSecretRef{Name: optString(s.Name), SecretRef: a.secretRef(r, s.SecretID)})
	}
	for _, cs := range c.Consumers {
		b.Consumers = append(b.Consumers, containerConsumerRef{Name: cs.Name, URL: cs.URL})
	}
	return b
}

// ---- POST /v1/containers

func (a *api) createContainer(w http.ResponseWriter, r *http.Request) {
	obj, _, err := readJSONObject(r) // refs and names only: nothing to zero
	if err != nil {
		a.fail(w, r, err)
		return
	}
	req, err := a.containerRequest(r, obj)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.svc.CreateContainer(r.Context(), identity(r), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ref := a.ref(r, "containers", c.ID)
	w.Header().Set("Location", ref)
	writeJSON(w, http.StatusCreated, containerRefBody{ContainerRef: ref})
}

// containerRequest translates a container body. Like Barbican's load_body
// it strips surrounding whitespace from strings; members it does not know
// are ignored, as Barbican's schema allows them.
func (a *api) containerRequest(r *http.Request, obj map[string]json.RawMessage) (kms.ContainerRequest, error) {
	var req kms.ContainerRequest
	name, _, err := jsonString(obj, "name")
	if err != nil {
		return req, err
	}
	req.Name = strings.TrimSpace(name)
	typ, ok, err := jsonString(obj, "type")
	if err != nil {
		return req, err
	}
	if !ok {
		return req, kms.Invalid("'type' is a required property")
	}
	req.Type = kms.ContainerType(strings.TrimSpace(typ))
	raw, ok := obj["secret_refs"]
	if !ok || isNull(raw) {
		return req, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return req, kms.Invalid("'secret_refs' must be an array")
	}
	for _, item := range items {
		obj := splitObject(item)
		if obj == nil {
			return req, kms.Invalid("'secret_refs' items must be objects")
		}
		ref, err := a.containerSecret(r, obj, "secret_refs.")
		if err != nil {
			return req, err
		}
		req.Secrets = append(req.Secrets, ref)
	}
	return req, nil
}

// containerSecret reads one {"name", "secret_ref"} object; in prefixes the
// members' names in messages ("secret_refs." for a create's items). A ref
// must be this server's, as Barbican checks it against its host href
// (400); a ref of this server that names no secret is left to kms, which
// answers 404 as Barbican does for a secret it cannot find.
func (a *api) containerSecret(r *http.Request, obj map[string]json.RawMessage, in string) (kms.ContainerSecret, error) {
	var cs kms.ContainerSecret
	name, _, err := jsonString(obj, "name")
	if err != nil {
		return cs, kms.Invalid("'%sname' must be a string", in)
	}
	ref, ok, err := jsonString(obj, "secret_ref")
	if err != nil {
		return cs, kms.Invalid("'%ssecret_ref' must be a string", in)
	}
	ref = strings.TrimSpace(ref)
	if !ok || ref == "" {
		return cs, kms.Invalid("'secret_ref' is a required property")
	}
	cs.Name = strings.TrimSpace(name)
	prefix := a.baseURL(r) + "/v1/secrets/"
	if !strings.HasPrefix(ref, prefix) {
		return cs, kms.Invalid("Provided field value is not supported: secret_ref %q does not match the configured hostname %s", ref, a.baseURL(r))
	}
	id := strings.TrimSuffix(strings.TrimPrefix(ref, prefix), "/")
	if isUUID(id) {
		id = strings.ToLower(id)
	}
	cs.SecretID = id // anything else names no secret: kms answers 404
	return cs, nil
}

// ---- GET /v1/containers/{id}

func (a *api) getContainer(w http.ResponseWriter, r *http.Request) {
	id, err := containerID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.svc.GetContainer(r.Context(), identity(r), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.containerBody(r, c))
}

// ---- GET /v1/containers

func (a *api) listContainers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := parsePage(r)
	cq := kms.ContainerQuery{
		Name: q.Get("name"), Type: kms.ContainerType(q.Get("type")),
		Offset: p.Offset, Limit: p.Limit,
	}
	cs, total, err := a.svc.ListContainers(r.Context(), identity(r), cq)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := containerList{Containers: make([]containerBody, 0, len(cs)), Total: total}
	for _, c := range cs {
		out.Containers = append(out.Containers, a.containerBody(r, c))
	}
	if len(cs) > 0 { // Barbican links only non-empty pages
		out.Previous, out.Next = a.pageLinks(r, "containers", p, total)
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- DELETE /v1/containers/{id}

func (a *api) deleteContainer(w http.ResponseWriter, r *http.Request) {
	id, err := containerID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.svc.DeleteContainer(r.Context(), identity(r), id); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- /v1/containers/{id}/consumers

func (a *api) listContainerConsumers(w http.ResponseWriter, r *http.Request) {
	id, err := containerID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p := parsePage(r)
	cs, total, err := a.svc.ListContainerConsumers(r.Context(), identity(r), id, p.Offset, p.Limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := containerConsumerList{Consumers: make([]containerConsumerBody, 0, len(cs)), Total: total}
	for _, c := range cs {
		t := formatTime(c.Created) // a consumer is never changed in place
		out.Consumers = append(out.Consumers, containerConsumerBody{
			Created: t, Updated: t, Status: secretStatus, Name: c.Name, URL: c.URL,
		})
	}
	if len(cs) > 0 {
		out.Previous, out.Next = a.pageLinks(r, "containers/"+id+"/consumers", p, total)
	}
	writeJSON(w, http.StatusOK, out)
}

// readContainerConsumer reads {"name", "URL"}; other members are ignored.
func readContainerConsumer(r *http.Request) (kms.ContainerConsumer, error) {
	var c kms.ContainerConsumer
	obj, _, err := readJSONObject(r)
	if err != nil {
		return c, err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"name", &c.Name}, {"URL", &c.URL}} {
		s, ok, err := jsonString(obj, f.key)
		if err != nil {
			return c, err
		}
		if !ok {
			return c, kms.Invalid("'%s' is a required property", f.key)
		}
		*f.dst = strings.TrimSpace(s)
	}
	return c, nil
}

// containerConsumerChanged answers a consumer's add or remove with 200
// and the container, as Barbican does for both.
func (a *api) containerConsumerChanged(w http.ResponseWriter, r *http.Request, c *kms.Container) {
	if r.Method == http.MethodPost {
		w.Header().Set("Location", a.ref(r, "containers", c.ID, "consumers"))
	}
	writeJSON(w, http.StatusOK, a.containerBody(r, c))
}

// changeContainer is the handler of a change to one part of a container:
// read takes what the body names, change runs it in kms and answer
// answers with the container it returns.
func changeContainer[T any](a *api, read func(*http.Request) (T, error),
	change func(ctx context.Context, who kms.Identity, id string, part T) (*kms.Container, error),
	answer func(w http.ResponseWriter, r *http.Request, c *kms.Container)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := containerID(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		part, err := read(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		c, err := change(r.Context(), identity(r), id, part)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		answer(w, r, c)
	}
}

// ---- /v1/containers/{id}/secrets

// readContainerSecret reads {"name", "secret_ref"}, as an item of a
// create's secret_refs.
func (a *api) readContainerSecret(r *http.Request) (kms.ContainerSecret, error) {
	obj, _, err := readJSONObject(r) // a name and a ref: nothing to zero
	if err != nil {
		return kms.ContainerSecret{}, err
	}
	return a.containerSecret(r, obj, "")
}

// containerSecretChanged answers an add with 201 {container_ref} and the
// ref as Location, a remove with 204, as Barbican does.
func (a *api) containerSecretChanged(w http.ResponseWriter, r *http.Request, c *kms.Container) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ref := a.ref(r, "containers", c.ID)
	w.Header().Set("Location", ref)
	writeJSON(w, http.StatusCreated, containerRefBody{ContainerRef: ref})
}
