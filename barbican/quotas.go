package barbican

import (
	"net/http"
	"slices"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Quotas: GET /v1/quotas is the caller's project's effective quotas;
// /v1/project-quotas (GET, paged) and /v1/project-quotas/{project_id}
// (GET, PUT, DELETE) manage the projects' configured quotas, for service
// admins. Values: -1 unlimited, 0 disabled, N at most N; in a project's
// configuration null means "the default". Who may do what, what a value
// means and what exceeding one does are kms's (quotas.go); exceeding is a
// 403 on the create.
//
// Barbican's list links name the resource "project_quotas" (an invalid
// path); ours point at /v1/project-quotas.

// quotasBody is Barbican's quota document, members in Barbican's order; a
// nil value (configured quotas only) is null: the default applies.
type quotasBody struct {
	Secrets    *int `json:"secrets"`
	Orders     *int `json:"orders"`
	Containers *int `json:"containers"`
	Consumers  *int `json:"consumers"`
	CAs        *int `json:"cas"`
}

func quotasView(q kms.Quotas) quotasBody {
	get := func(k kms.QuotaKind) *int {
		if v, ok := q[k]; ok {
			return &v
		}
		return nil
	}
	return quotasBody{
		Secrets: get(kms.QuotaSecrets), Orders: get(kms.QuotaOrders), Containers: get(kms.QuotaContainers),
		Consumers: get(kms.QuotaConsumers), CAs: get(kms.QuotaCAs),
	}
}

type effectiveQuotasBody struct {
	Quotas quotasBody `json:"quotas"`
}

type projectQuotasBody struct {
	ProjectQuotas quotasBody `json:"project_quotas"`
}

type projectQuotasItem struct {
	ProjectID     string     `json:"project_id"`
	ProjectQuotas quotasBody `json:"project_quotas"`
}

type projectQuotasList struct {
	ProjectQuotas []projectQuotasItem `json:"project_quotas"`
	Previous      string              `json:"previous,omitempty"`
	Next          string              `json:"next,omitempty"`
	Total         int                 `json:"total"`
}

func (a *api) getQuotas(w http.ResponseWriter, r *http.Request) {
	q, err := a.svc.EffectiveQuotas(r.Context(), identity(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, effectiveQuotasBody{Quotas: quotasView(q)})
}

func (a *api) listProjectQuotas(w http.ResponseWriter, r *http.Request) {
	p := parsePage(r)
	list, total, err := a.svc.ListProjectQuotas(r.Context(), identity(r), p.Offset, p.Limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := projectQuotasList{ProjectQuotas: make([]projectQuotasItem, 0, len(list)), Total: total}
	for _, pq := range list {
		out.ProjectQuotas = append(out.ProjectQuotas, projectQuotasItem{ProjectID: pq.Project, ProjectQuotas: quotasView(pq.Quotas)})
	}
	out.Previous, out.Next = a.pageLinks(r, "project-quotas", p, total)
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getProjectQuotas(w http.ResponseWriter, r *http.Request) {
	pq, err := a.svc.GetProjectQuotas(r.Context(), identity(r), routeVar(r, "project"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, projectQuotasBody{ProjectQuotas: quotasView(pq.Quotas)})
}

// putProjectQuotas reads {"project_quotas": {"secrets": 10, ...}}: the
// one member, an object of integers (null: not given). Kinds are kms's to
// check.
func (a *api) putProjectQuotas(w http.ResponseWriter, r *http.Request) {
	// Barbican checks the caller before the body.
	if err := a.svc.Allows(kms.ProjectQuotaAdmin, identity(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	q, err := readProjectQuotas(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.svc.SetProjectQuotas(r.Context(), identity(r), routeVar(r, "project"), q); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func readProjectQuotas(r *http.Request) (kms.Quotas, error) {
	obj, body, err := readJSONObject(r)
	defer crypto.Zero(body)
	if err != nil {
		return nil, err
	}
	if err := onlyKeys(obj, "project_quotas"); err != nil {
		return nil, err
	}
	members, ok, err := jsonObject(obj, "project_quotas")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, kms.Invalid("'project_quotas' is a required property")
	}
	q := make(kms.Quotas, len(members))
	for k := range members {
		if !slices.Contains(kms.QuotaKinds, kms.QuotaKind(k)) {
			return nil, kms.Invalid("Additional properties are not allowed in 'project_quotas' ('%s' was unexpected)", k)
		}
		v, set, err := jsonInt(members, k)
		if err != nil {
			return nil, kms.Invalid("'project_quotas.%s' must be an integer", k)
		}
		if set {
			q[kms.QuotaKind(k)] = v
		}
	}
	return q, nil
}

func (a *api) deleteProjectQuotas(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteProjectQuotas(r.Context(), identity(r), routeVar(r, "project")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
