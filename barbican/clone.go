package barbican

import (
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Keywarden's extensions to a secret, on paths of their own so that
// Barbican's documents stay exactly Barbican's:
//
//	POST /v1/secrets/{id}/clone      server-side copy (image key → volume key)
//	GET  /v1/secrets/{id}/lifecycle  deletion policy, lineage, disk format, consumers

// cloneBody answers a clone: the new secret's ref and its source's.
type cloneBody struct {
	SecretRef  string `json:"secret_ref"`
	ClonedFrom string `json:"cloned_from"`
}

// cloneSecret: {"project", "name", "consumer": {service, resource_type,
// resource_id}, "deletion_policy", "metadata"}, all optional → 201.
func (a *api) cloneSecret(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	obj, body, err := readJSONObject(r)
	defer crypto.Zero(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := onlyKeys(obj, "project", "name", "consumer", "deletion_policy", "metadata"); err != nil {
		a.fail(w, r, err)
		return
	}
	var req kms.CloneRequest
	project, _, err := jsonString(obj, "project")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	req.Project = strings.TrimSpace(project)
	if name, ok, err := jsonString(obj, "name"); err != nil {
		a.fail(w, r, err)
		return
	} else if ok {
		name = strings.TrimSpace(name)
		req.Name = &name
	}
	if c, ok, err := jsonObject(obj, "consumer"); err != nil {
		a.fail(w, r, err)
		return
	} else if ok {
		consumer, err := consumerOf(c, "consumer.")
		if err != nil {
			a.fail(w, r, err)
			return
		}
		req.Consumer = &consumer
	}
	policy, _, err := jsonString(obj, "deletion_policy")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	req.DeletionPolicy = kms.DeletionPolicy(policy)
	if req.Metadata, err = stringMap(obj, "metadata"); err != nil {
		a.fail(w, r, err)
		return
	}
	sec, err := a.svc.CloneSecret(r.Context(), identity(r), id, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ref := a.secretRef(r, sec.ID)
	w.Header().Set("Location", ref)
	writeJSON(w, http.StatusCreated, cloneBody{SecretRef: ref, ClonedFrom: a.secretRef(r, id)})
}

// lifecycleBody is the extension view of a secret.
type lifecycleBody struct {
	SecretRef      string          `json:"secret_ref"`
	Project        string          `json:"project"`
	DeletionPolicy string          `json:"deletion_policy"`
	ClonedFrom     *string         `json:"cloned_from"`
	Encryption     *encryptionBody `json:"encryption"`
	Consumers      []consumerBody  `json:"consumers"`
}

type encryptionBody struct {
	Format  string `json:"format"`
	Cipher  string `json:"cipher,omitempty"`
	KeySize int    `json:"key_size,omitempty"`
}

func (a *api) getLifecycle(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sec, err := a.svc.GetSecret(r.Context(), identity(r), id, kms.View{})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := lifecycleBody{
		SecretRef: a.secretRef(r, sec.ID), Project: sec.Project,
		DeletionPolicy: string(sec.EffectivePolicy()), Consumers: make([]consumerBody, 0, len(sec.Consumers)),
	}
	if sec.ClonedFrom != "" {
		ref := a.secretRef(r, sec.ClonedFrom)
		out.ClonedFrom = &ref
	}
	if e := sec.Encryption; e != nil {
		out.Encryption = &encryptionBody{Format: e.Format, Cipher: e.Cipher, KeySize: e.KeySize}
	}
	for _, c := range sec.Consumers {
		out.Consumers = append(out.Consumers, consumerView(c))
	}
	writeJSON(w, http.StatusOK, out)
}
