package barbican

import (
	"net/http"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// Keywarden's operator extension for orphaned secrets (kms.Service.Orphans
// admits key-manager:service-admin only):
//
//	GET    /v1/orphans?grace=1h&older_than=720h   list them, every project
//	DELETE /v1/orphans?grace=1h&older_than=720h   destroy them (each re-checked)

type orphanBody struct {
	SecretRef      string `json:"secret_ref"`
	Project        string `json:"project"`
	Name           string `json:"name,omitempty"`
	SecretType     string `json:"secret_type"`
	DeletionPolicy string `json:"deletion_policy"`
	Updated        string `json:"updated"`
	Reason         string `json:"reason"`
	Destroyed      bool   `json:"destroyed"`
}

type orphanList struct {
	Orphans   []orphanBody `json:"orphans"`
	Total     int          `json:"total"`
	Destroyed int          `json:"destroyed"`
}

// DefaultOrphanGrace spares secrets whose consumer may still be on its way,
// when neither the query nor Config.OrphanRule names a grace.
const DefaultOrphanGrace = time.Hour

func (a *api) orphans(w http.ResponseWriter, r *http.Request) {
	rule := a.orphanRule // the configured rule; the query overrides field by field
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		dst  *time.Duration
	}{{"grace", &rule.Grace}, {"older_than", &rule.OlderThan}} {
		if v := q.Get(p.name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				a.fail(w, r, kms.Invalid("%s must be a non-negative duration such as 90m or 720h", p.name))
				return
			}
			*p.dst = d
		}
	}
	found, destroyed, err := a.svc.Orphans(r.Context(), identity(r), rule, r.Method == http.MethodDelete)
	if err != nil {
		if len(destroyed) > 0 { // a partial collection: the log says what went
			a.log.Error("orphan collection incomplete", "destroyed", destroyed, "found", len(found), "err", err)
		}
		a.fail(w, r, err)
		return
	}
	gone := make(map[string]bool, len(destroyed))
	for _, id := range destroyed {
		gone[id] = true
	}
	out := orphanList{Orphans: make([]orphanBody, 0, len(found)), Total: len(found), Destroyed: len(destroyed)}
	for _, o := range found {
		s := o.Secret
		out.Orphans = append(out.Orphans, orphanBody{
			SecretRef: a.secretRef(r, s.ID), Project: s.Project, Name: s.Name, SecretType: string(s.Type),
			DeletionPolicy: string(s.EffectivePolicy()), Updated: formatTime(s.Updated), Reason: o.Reason,
			Destroyed: gone[s.ID],
		})
	}
	writeJSON(w, http.StatusOK, out)
}
