package barbican

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/kmstest"
)

// asServiceAdmin are the no-auth headers of a service admin.
var asServiceAdmin = []string{"X-Project-Id", "ops", "X-User-Id", "sa", "X-Roles", kms.RoleServiceAdmin}

var quotaKeys = []string{"cas", "consumers", "containers", "orders", "secrets"}

// newQuotaEnv is newEnv with default quotas in kms.
func newQuotaEnv(t *testing.T, defaults kms.Quotas) *env {
	t.Helper()
	st, root := kmstest.Bolt(t)
	clk := &clock{}
	svc := kmstest.Service(t, kms.Config{Store: st, Master: root, Now: clk.Now, Quotas: defaults})
	logs := &logBuffer{}
	h, err := New(Config{Service: svc, NoAuth: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, url: srv.URL, svc: svc, store: st, clock: clk, logs: logs,
		hdr: map[string]string{"X-Project-Id": "p1", "X-User-Id": "u1"}}
}

// quotasOf decodes the object under member (quotas, project_quotas).
func quotasOf(t *testing.T, r resp, member string) map[string]any {
	t.Helper()
	q, ok := r.JSON(t)[member].(map[string]any)
	if !ok {
		t.Fatalf("no %s object: %s", member, r.Body)
	}
	if got := keys(q); !slices.Equal(got, quotaKeys) {
		t.Fatalf("%s members %v", member, got)
	}
	return q
}

func TestQuotasAPI(t *testing.T) {
	e := newEnv(t)
	// Nothing configured: every kind unlimited.
	q := quotasOf(t, e.must(http.StatusOK, "GET", "/v1/quotas", nil), "quotas")
	for k, v := range q {
		if v != -1.0 {
			t.Fatalf("default %s = %v", k, v)
		}
	}

	// PUT: 204, no body; GET shows the configured values, null for the rest.
	r := e.must(http.StatusNoContent, "PUT", "/v1/project-quotas/p2",
		map[string]any{"project_quotas": map[string]any{"secrets": 10, "orders": 0, "consumers": nil}}, asServiceAdmin...)
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body: %q", r.Body)
	}
	r = e.must(http.StatusOK, "GET", "/v1/project-quotas/p2", nil, asServiceAdmin...)
	if got := keys(r.JSON(t)); !slices.Equal(got, []string{"project_quotas"}) {
		t.Fatalf("members %v", got)
	}
	pq := quotasOf(t, r, "project_quotas")
	if pq["secrets"] != 10.0 || pq["orders"] != 0.0 || pq["containers"] != nil || pq["consumers"] != nil || pq["cas"] != nil {
		t.Fatalf("configured %s", r.Body)
	}
	// The project sees them merged over the defaults.
	q = quotasOf(t, e.must(http.StatusOK, "GET", "/v1/quotas", nil, "X-Project-Id", "p2", "X-Roles", "observer"), "quotas")
	if q["secrets"] != 10.0 || q["orders"] != 0.0 || q["containers"] != -1.0 || q["consumers"] != -1.0 || q["cas"] != -1.0 {
		t.Fatalf("effective %v", q)
	}

	// The list, oldest configuration first, paged like Barbican's lists.
	e.must(http.StatusNoContent, "PUT", "/v1/project-quotas/p3", map[string]any{"project_quotas": map[string]any{"cas": 1}}, asServiceAdmin...)
	e.must(http.StatusNoContent, "PUT", "/v1/project-quotas/p1/", map[string]any{"project_quotas": map[string]any{}}, asServiceAdmin...)
	r = e.must(http.StatusOK, "GET", "/v1/project-quotas?limit=2", nil, asServiceAdmin...)
	var list struct {
		ProjectQuotas []struct {
			ProjectID     string         `json:"project_id"`
			ProjectQuotas map[string]any `json:"project_quotas"`
		} `json:"project_quotas"`
		Total    int    `json:"total"`
		Next     string `json:"next"`
		Previous string `json:"previous"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	if list.Total != 3 || len(list.ProjectQuotas) != 2 || list.ProjectQuotas[0].ProjectID != "p2" ||
		list.ProjectQuotas[1].ProjectID != "p3" || list.ProjectQuotas[1].ProjectQuotas["cas"] != 1.0 ||
		!strings.HasSuffix(list.Next, "/v1/project-quotas?limit=2&offset=2") || list.Previous != "" {
		t.Fatalf("page 1: %s", r.Body)
	}
	r = e.must(http.StatusOK, "GET", "/v1/project-quotas?limit=2&offset=2", nil, asServiceAdmin...)
	m := r.JSON(t)
	items, _ := m["project_quotas"].([]any)
	if m["total"] != 3.0 || len(items) != 1 || items[0].(map[string]any)["project_id"] != "p1" ||
		!strings.HasSuffix(m["previous"].(string), "/v1/project-quotas?limit=2&offset=0") || m["next"] != nil {
		t.Fatalf("page 2: %s", r.Body)
	}

	// DELETE: 204, then the project has no configuration (404).
	e.must(http.StatusNoContent, "DELETE", "/v1/project-quotas/p2", nil, asServiceAdmin...)
	checkError(t, e.do("GET", "/v1/project-quotas/p2", nil, asServiceAdmin...), http.StatusNotFound)
	checkError(t, e.do("DELETE", "/v1/project-quotas/p2", nil, asServiceAdmin...), http.StatusNotFound)
	checkError(t, e.do("GET", "/v1/project-quotas/never-configured", nil, asServiceAdmin...), http.StatusNotFound)
	q = quotasOf(t, e.must(http.StatusOK, "GET", "/v1/quotas", nil, "X-Project-Id", "p2"), "quotas")
	if q["secrets"] != -1.0 {
		t.Fatalf("after delete %v", q)
	}
	// An empty list is still a list.
	for _, p := range []string{"p1", "p3"} {
		e.must(http.StatusNoContent, "DELETE", "/v1/project-quotas/"+p, nil, asServiceAdmin...)
	}
	r = e.must(http.StatusOK, "GET", "/v1/project-quotas", nil, asServiceAdmin...)
	if strings.TrimSpace(string(r.Body)) != `{"project_quotas":[],"total":0}` {
		t.Fatalf("empty list %s", r.Body)
	}
}

func TestProjectQuotasRefusals(t *testing.T) {
	e := newEnv(t)
	good := map[string]any{"project_quotas": map[string]any{"secrets": 1}}
	// Only a service admin manages project quotas; a project admin,
	// creator or service may not, whatever the body.
	for _, roles := range []string{"admin", "creator", "observer", "service", "admin,creator"} {
		h := []string{"X-Roles", roles}
		checkError(t, e.do("GET", "/v1/project-quotas", nil, h...), http.StatusForbidden)
		checkError(t, e.do("GET", "/v1/project-quotas/p1", nil, h...), http.StatusForbidden)
		checkError(t, e.do("PUT", "/v1/project-quotas/p1", good, h...), http.StatusForbidden)
		checkError(t, e.do("PUT", "/v1/project-quotas/p1", `{`, append(h, "Content-Type", "application/json")...), http.StatusForbidden)
		checkError(t, e.do("DELETE", "/v1/project-quotas/p1", nil, h...), http.StatusForbidden)
	}
	// Reading one's effective quotas takes a role in the project.
	checkError(t, e.do("GET", "/v1/quotas", nil, "X-Roles", "nothing-useful"), http.StatusForbidden)
	checkError(t, e.do("GET", "/v1/quotas", nil, "X-Project-Id", "-"), http.StatusBadRequest)

	for name, body := range map[string]any{
		"string value":       `{"project_quotas": {"secrets": "10"}}`,
		"fraction":           `{"project_quotas": {"secrets": 1.5}}`,
		"exponent":           `{"project_quotas": {"secrets": 1e3}}`,
		"boolean":            `{"project_quotas": {"orders": true}}`,
		"object value":       `{"project_quotas": {"orders": {}}}`,
		"overflow":           `{"project_quotas": {"orders": 100000000000000000000}}`,
		"unknown kind":       `{"project_quotas": {"transport_keys": 1}}`,
		"unknown null kind":  `{"project_quotas": {"bogus": null}}`,
		"unknown top member": `{"project_quotas": {"secrets": 1}, "quotas": {}}`,
		"missing member":     `{"quotas": {"secrets": 1}}`,
		"not an object":      `{"project_quotas": [1, 2]}`,
		"null member":        `{"project_quotas": null}`,
		"array body":         `[]`,
		"malformed":          `{"project_quotas": {"secrets": 1}`,
		"empty":              ``,
	} {
		r := e.do("PUT", "/v1/project-quotas/p1", body, append(slices.Clone(asServiceAdmin), "Content-Type", "application/json")...)
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", name, r.Status, r.Body)
			continue
		}
		checkError(t, r, http.StatusBadRequest)
	}
	checkError(t, e.do("PUT", "/v1/project-quotas/p1", `{"project_quotas": {}}`, append(slices.Clone(asServiceAdmin), "Content-Type", "text/plain")...),
		http.StatusUnsupportedMediaType)
	checkError(t, e.do("PUT", "/v1/project-quotas/bad%20project", good, asServiceAdmin...), http.StatusBadRequest)
	checkError(t, e.do("POST", "/v1/project-quotas/p1", good, asServiceAdmin...), http.StatusMethodNotAllowed)
	checkError(t, e.do("PUT", "/v1/quotas", good, asServiceAdmin...), http.StatusMethodNotAllowed)
	checkError(t, e.do("GET", "/v1/project-quotas/p1", nil, asServiceAdmin...), http.StatusNotFound) // nothing was stored
}

// Exceeding a quota is Barbican's 403 with its error body, and writes
// nothing.
func TestQuotaEnforcedOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusNoContent, "PUT", "/v1/project-quotas/p1",
		map[string]any{"project_quotas": map[string]any{"secrets": 2, "consumers": 1}}, asServiceAdmin...)
	ids := []string{e.createText("a", "1"), e.createText("b", "2")}
	r := e.do("POST", "/v1/secrets", map[string]any{"name": "c", "payload": "3", "payload_content_type": "text/plain"})
	checkError(t, r, http.StatusForbidden)
	var body errorBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body != (errorBody{Code: 403, Title: "Forbidden", Description: "Quota reached for project p1. Only 2 secrets are allowed."}) {
		t.Fatalf("error body %+v", body)
	}
	checkError(t, e.do("POST", "/v1/orders", map[string]any{"type": "key", "meta": map[string]any{"bit_length": 256}}), http.StatusForbidden)
	if m := e.must(http.StatusOK, "GET", "/v1/secrets", nil).JSON(t); m["total"] != 2.0 {
		t.Fatalf("refused creates wrote: %v secrets", m["total"])
	}
	if m := e.must(http.StatusOK, "GET", "/v1/orders", nil).JSON(t); m["total"] != 0.0 {
		t.Fatalf("refused order written: %v", m["total"])
	}
	// Consumers.
	e.must(http.StatusOK, "POST", "/v1/secrets/"+ids[0]+"/consumers", consumer("volume", "volume", "v1"))
	r = e.do("POST", "/v1/secrets/"+ids[1]+"/consumers", consumer("volume", "volume", "v2"))
	checkError(t, r, http.StatusForbidden)
	if !strings.Contains(string(r.Body), "Only 1 consumers are allowed") {
		t.Fatalf("consumer refusal %s", r.Body)
	}
	// A delete makes room.
	e.must(http.StatusOK, "DELETE", "/v1/secrets/"+ids[0]+"/consumers", consumer("volume", "volume", "v1"))
	e.must(http.StatusNoContent, "DELETE", "/v1/secrets/"+ids[0], nil)
	e.createText("c", "3")
	e.must(http.StatusOK, "POST", "/v1/secrets/"+ids[1]+"/consumers", consumer("volume", "volume", "v2"))
}

// Config.Quotas of kms are every project's defaults.
func TestQuotaDefaultsOverHTTP(t *testing.T) {
	e := newQuotaEnv(t, kms.Quotas{kms.QuotaSecrets: 1, kms.QuotaOrders: 0})
	q := quotasOf(t, e.must(http.StatusOK, "GET", "/v1/quotas", nil), "quotas")
	if q["secrets"] != 1.0 || q["orders"] != 0.0 || q["consumers"] != -1.0 {
		t.Fatalf("defaults %v", q)
	}
	e.createText("a", "1")
	checkError(t, e.do("POST", "/v1/secrets", map[string]any{"name": "b"}), http.StatusForbidden)
	checkError(t, e.do("POST", "/v1/orders", map[string]any{"type": "key", "meta": map[string]any{"bit_length": 256}}, "X-Project-Id", "p2"),
		http.StatusForbidden)
	// A project's own configuration lifts them.
	e.must(http.StatusNoContent, "PUT", "/v1/project-quotas/p1", map[string]any{"project_quotas": map[string]any{"secrets": -1}}, asServiceAdmin...)
	e.createText("b", "2")
}
