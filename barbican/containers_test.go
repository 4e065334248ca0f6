package barbican

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/containers"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/keywarden/keywarden/kms"
)

// barbicanContainerKeys are exactly the members of a Barbican container.
var barbicanContainerKeys = []string{"consumers", "container_ref", "created", "creator_id", "name",
	"secret_refs", "status", "type", "updated"}

var containerRefRE = regexp.MustCompile(`/v1/containers/([0-9a-f-]{36})$`)

// createContainer makes a container and returns its id.
func (e *env) createContainer(body map[string]any, h ...string) string {
	e.t.Helper()
	r := e.must(http.StatusCreated, "POST", "/v1/containers", body, h...)
	ref, _ := r.JSON(e.t)["container_ref"].(string)
	m := containerRefRE.FindStringSubmatch(ref)
	if m == nil || r.Header.Get("Location") != ref {
		e.t.Fatalf("container_ref %q, Location %q", ref, r.Header.Get("Location"))
	}
	return m[1]
}

// secretRefs builds secret_refs from name, ref pairs.
func secretRefs(pairs ...string) []map[string]string {
	var out []map[string]string
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, map[string]string{"name": pairs[i], "secret_ref": pairs[i+1]})
	}
	return out
}

var naiveTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)

func TestContainerCreateAndGet(t *testing.T) {
	e := newEnv(t)
	pub, priv := e.createText("pub", "p"), e.createText("priv", "k")
	pubRef, privRef := e.url+"/v1/secrets/"+pub, e.url+"/v1/secrets/"+priv
	id := e.createContainer(map[string]any{"name": "rsa pair", "type": "rsa",
		"secret_refs": secretRefs("public_key", pubRef, "private_key", privRef)})

	r := e.must(http.StatusOK, "GET", "/v1/containers/"+id, nil)
	m := r.JSON(t)
	if got := keys(m); !slices.Equal(got, barbicanContainerKeys) {
		t.Fatalf("members %v", got)
	}
	if m["name"] != "rsa pair" || m["type"] != "rsa" || m["status"] != "ACTIVE" || m["creator_id"] != "u1" ||
		m["container_ref"] != e.url+"/v1/containers/"+id {
		t.Fatalf("container %s", r.Body)
	}
	for _, k := range []string{"created", "updated"} {
		if s, _ := m[k].(string); !naiveTimeRE.MatchString(s) {
			t.Errorf("%s %q is not a naive UTC time", k, m[k])
		}
	}
	want := `"secret_refs":[{"name":"public_key","secret_ref":"` + pubRef + `"},{"name":"private_key","secret_ref":"` + privRef + `"}],"consumers":[]`
	if !strings.Contains(string(r.Body), want) {
		t.Fatalf("secret_refs/consumers: %s", r.Body)
	}
	// Barbican's member order.
	raw := string(r.Body)
	order := []string{`"created"`, `"updated"`, `"status"`, `"name"`, `"type"`, `"creator_id"`, `"secret_refs"`, `"consumers"`, `"container_ref"`}
	for i := 1; i < len(order); i++ {
		if strings.Index(raw, order[i-1]) > strings.Index(raw, order[i]) {
			t.Fatalf("member order: %s", raw)
		}
	}

	// No name, an unnamed ref, a ref with a trailing slash and an
	// uppercase id, python-barbicanclient's trailing slash on the POST.
	id2 := e.must(http.StatusCreated, "POST", "/v1/containers/", map[string]any{"type": "generic",
		"secret_refs": []map[string]any{{"secret_ref": " " + e.url + "/v1/secrets/" + strings.ToUpper(pub) + "/ "}}}).JSON(t)
	m = e.must(http.StatusOK, "GET", strings.TrimPrefix(id2["container_ref"].(string), e.url), nil).JSON(t)
	refs := m["secret_refs"].([]any)
	if m["name"] != nil || len(refs) != 1 || refs[0].(map[string]any)["name"] != nil ||
		refs[0].(map[string]any)["secret_ref"] != pubRef {
		t.Fatalf("unnamed: %v", m)
	}

	// Unknown, malformed and foreign ids.
	checkError(t, e.do("GET", "/v1/containers/0190a0a0-0000-7000-8000-000000000000", nil), http.StatusNotFound)
	checkError(t, e.do("GET", "/v1/containers/not-a-uuid", nil), http.StatusNotFound)
	checkError(t, e.do("GET", "/v1/containers/"+id, nil, "X-Project-Id", "p2"), http.StatusForbidden)
	checkError(t, e.do("PUT", "/v1/containers/"+id, map[string]any{}), http.StatusMethodNotAllowed)

	// Any role of the project reads (audit too); only admin or creator create.
	e.must(http.StatusOK, "GET", "/v1/containers/"+id, nil, "X-User-Id", "u9", "X-Roles", "audit")
	checkError(t, e.do("POST", "/v1/containers", map[string]any{"type": "generic"}, "X-Roles", "observer"), http.StatusForbidden)
	e.createContainer(map[string]any{"type": "generic"}, "X-Roles", "creator")
}

func TestContainerCreateRefused(t *testing.T) {
	e := newEnv(t)
	mine := e.url + "/v1/secrets/" + e.createText("mine", "m")
	theirs := e.url + "/v1/secrets/" + e.createText("theirs", "t", "X-Project-Id", "p2")
	cert := e.url + "/v1/secrets/" + e.createText("cert", "c")
	for _, tc := range []struct {
		name   string
		body   any
		h      []string
		status int
		desc   string
	}{
		{"not JSON", `{"type":"generic"}`, []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, "Unexpected content type"},
		{"malformed", `{"type":`, []string{"Content-Type", "application/json"}, http.StatusBadRequest, "Malformed JSON"},
		{"not an object", `["generic"]`, []string{"Content-Type", "application/json"}, http.StatusBadRequest, "Malformed JSON"},
		{"no type", map[string]any{"name": "x"}, nil, http.StatusBadRequest, "'type' is a required property"},
		{"type not a string", map[string]any{"type": 1}, nil, http.StatusBadRequest, "'type' must be a string"},
		{"unknown type", map[string]any{"type": "dsa"}, nil, http.StatusBadRequest, "'dsa' is not one of"},
		{"name not a string", map[string]any{"type": "generic", "name": []int{1}}, nil, http.StatusBadRequest, "'name' must be a string"},
		{"refs not an array", map[string]any{"type": "generic", "secret_refs": "x"}, nil, http.StatusBadRequest, "'secret_refs' must be an array"},
		{"ref not an object", map[string]any{"type": "generic", "secret_refs": []any{"x"}}, nil, http.StatusBadRequest, "must be objects"},
		{"ref missing", map[string]any{"type": "generic", "secret_refs": []any{map[string]any{"name": "a"}}}, nil, http.StatusBadRequest, "'secret_ref' is a required property"},
		{"ref empty", map[string]any{"type": "generic", "secret_refs": secretRefs("a", " ")}, nil, http.StatusBadRequest, "'secret_ref' is a required property"},
		{"ref not a string", map[string]any{"type": "generic", "secret_refs": []any{map[string]any{"secret_ref": 5}}}, nil, http.StatusBadRequest, "must be a string"},
		{"foreign host", map[string]any{"type": "generic", "secret_refs": secretRefs("a", "http://evil.example/v1/secrets/"+idOfRef(t, mine))}, nil, http.StatusBadRequest, "does not match the configured hostname"},
		{"not a secrets path", map[string]any{"type": "generic", "secret_refs": secretRefs("a", e.url+"/v1/orders/"+idOfRef(t, mine))}, nil, http.StatusBadRequest, "configured hostname"},
		{"bare uuid", map[string]any{"type": "generic", "secret_refs": secretRefs("a", idOfRef(t, mine))}, nil, http.StatusBadRequest, "configured hostname"},
		{"malformed id", map[string]any{"type": "generic", "secret_refs": secretRefs("a", e.url+"/v1/secrets/not-a-uuid")}, nil, http.StatusNotFound, "Secret provided for 'a' doesn't exist."},
		{"unknown secret", map[string]any{"type": "generic", "secret_refs": secretRefs("a", e.url+"/v1/secrets/0190a0a0-0000-7000-8000-000000000000")}, nil, http.StatusNotFound, "doesn't exist"},
		{"another project's secret", map[string]any{"type": "generic", "secret_refs": secretRefs("a", theirs)}, nil, http.StatusNotFound, "Secret provided for 'a' doesn't exist."},
		{"duplicate names", map[string]any{"type": "generic", "secret_refs": secretRefs("a", mine, "a", cert)}, nil, http.StatusBadRequest, "Duplicate reference names are not allowed. Invalid property: 'secret_refs'"},
		{"duplicate secrets", map[string]any{"type": "generic", "secret_refs": secretRefs("a", mine, "b", mine)}, nil, http.StatusBadRequest, "Duplicate secret ids"},
		{"rsa without private key", map[string]any{"type": "rsa", "secret_refs": secretRefs("public_key", mine)}, nil, http.StatusBadRequest, "minimum required reference names"},
		{"rsa with a certificate", map[string]any{"type": "rsa", "secret_refs": secretRefs("public_key", mine, "private_key", cert, "certificate", theirs)}, nil, http.StatusBadRequest, "only 'private_key', 'public_key', 'private_key_passphrase'"},
		{"certificate without one", map[string]any{"type": "certificate", "secret_refs": secretRefs("private_key", mine)}, nil, http.StatusBadRequest, "'certificate'"},
		{"certificate with a public key", map[string]any{"type": "certificate", "secret_refs": secretRefs("certificate", cert, "public_key", mine)}, nil, http.StatusBadRequest, "only 'certificate'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/containers", tc.body, tc.h...)
			checkError(t, r, tc.status)
			if !strings.Contains(string(r.Body), tc.desc) {
				t.Fatalf("description: %s, want %q", r.Body, tc.desc)
			}
		})
	}
	// Nothing was stored.
	if m := e.must(http.StatusOK, "GET", "/v1/containers", nil).JSON(t); m["total"] != 0.0 {
		t.Fatalf("refused creates stored containers: %v", m)
	}
	// The typed containers Barbican accepts.
	e.createContainer(map[string]any{"type": "certificate", "secret_refs": secretRefs("certificate", cert, "private_key", mine)})
	e.createContainer(map[string]any{"type": "rsa", "unknown_member": true})
}

// Refs are checked against the configured host href, not the Host header.
func TestContainerRefsFollowHostHref(t *testing.T) {
	e := newEnv(t, withHostHref("https://kms.example:9311/"))
	sec := e.createText("s", "x")
	ref := "https://kms.example:9311/v1/secrets/" + sec
	id := e.createContainer(map[string]any{"type": "generic", "secret_refs": secretRefs("s", ref)})
	m := e.must(http.StatusOK, "GET", "/v1/containers/"+id, nil).JSON(t)
	if m["container_ref"] != "https://kms.example:9311/v1/containers/"+id ||
		m["secret_refs"].([]any)[0].(map[string]any)["secret_ref"] != ref {
		t.Fatalf("refs %v", m)
	}
	checkError(t, e.do("POST", "/v1/containers", map[string]any{"type": "generic",
		"secret_refs": secretRefs("s", e.url+"/v1/secrets/"+sec)}), http.StatusBadRequest)
}

func TestContainerListPagingAndFilters(t *testing.T) {
	e := newEnv(t)
	for i := range 25 {
		typ := "generic"
		if i%5 == 0 {
			typ = "rsa"
		}
		e.createContainer(map[string]any{"name": fmt.Sprintf("c%02d", i), "type": typ})
	}
	base := e.url + "/v1/containers"
	m := e.must(http.StatusOK, "GET", "/v1/containers", nil).JSON(t)
	if len(m["containers"].([]any)) != 10 || m["total"] != 25.0 || m["next"] != base+"?limit=10&offset=10" || m["previous"] != nil {
		t.Fatalf("first page %v", m)
	}
	first := m["containers"].([]any)[0].(map[string]any)
	if got := keys(first); !slices.Equal(got, barbicanContainerKeys) || first["name"] != "c00" {
		t.Fatalf("listed container %v", first)
	}
	m = e.must(http.StatusOK, "GET", "/v1/containers?offset=20&limit=10", nil).JSON(t)
	if len(m["containers"].([]any)) != 5 || m["previous"] != base+"?limit=10&offset=10" || m["next"] != nil {
		t.Fatalf("last page %v", m)
	}
	m = e.must(http.StatusOK, "GET", "/v1/containers?type=rsa&limit=2", nil).JSON(t)
	if m["total"] != 5.0 || m["next"] != base+"?limit=2&offset=2&type=rsa" {
		t.Fatalf("type filter %v", m)
	}
	m = e.must(http.StatusOK, "GET", "/v1/containers?name=C1", nil).JSON(t)
	if m["total"] != 10.0 {
		t.Fatalf("name filter %v", m)
	}
	// Past the end: no links, the total still.
	raw := string(e.must(http.StatusOK, "GET", "/v1/containers?offset=100", nil).Body)
	if raw != `{"containers":[],"total":25}`+"\n" {
		t.Fatalf("past the end: %s", raw)
	}
	// Another project has none; audit may not list.
	if m := e.must(http.StatusOK, "GET", "/v1/containers", nil, "X-Project-Id", "p2").JSON(t); m["total"] != 0.0 {
		t.Fatalf("p2 lists %v", m)
	}
	checkError(t, e.do("GET", "/v1/containers", nil, "X-Roles", "audit"), http.StatusForbidden)
}

func TestContainerDelete(t *testing.T) {
	e := newEnv(t)
	sec := e.createText("s", "x")
	id := e.createContainer(map[string]any{"type": "generic", "secret_refs": secretRefs("s", e.url+"/v1/secrets/"+sec)},
		"X-User-Id", "owner", "X-Roles", "creator")
	checkError(t, e.do("DELETE", "/v1/containers/"+id, nil, "X-Project-Id", "p2"), http.StatusForbidden)
	checkError(t, e.do("DELETE", "/v1/containers/"+id, nil, "X-User-Id", "u7", "X-Roles", "creator"), http.StatusForbidden)
	checkError(t, e.do("DELETE", "/v1/containers/not-a-uuid", nil), http.StatusNotFound)
	// In use: Barbican deletes it anyway, consumers included.
	e.must(http.StatusOK, "POST", "/v1/containers/"+id+"/consumers", map[string]string{"name": "lb", "URL": "u"})
	r := e.must(http.StatusNoContent, "DELETE", "/v1/containers/"+id, nil, "X-User-Id", "owner", "X-Roles", "creator")
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body %q", r.Body)
	}
	checkError(t, e.do("GET", "/v1/containers/"+id, nil), http.StatusNotFound)
	checkError(t, e.do("DELETE", "/v1/containers/"+id, nil), http.StatusNotFound)
	e.must(http.StatusOK, "GET", "/v1/secrets/"+sec, nil) // the secret stays

	// A deleted secret leaves its containers.
	id = e.createContainer(map[string]any{"type": "generic", "secret_refs": secretRefs("s", e.url+"/v1/secrets/"+sec)})
	e.must(http.StatusNoContent, "DELETE", "/v1/secrets/"+sec, nil)
	if m := e.must(http.StatusOK, "GET", "/v1/containers/"+id, nil).JSON(t); len(m["secret_refs"].([]any)) != 0 {
		t.Fatalf("deleted secret still listed: %v", m)
	}
}

func TestContainerConsumersAPI(t *testing.T) {
	e := newEnv(t)
	id := e.createContainer(map[string]any{"name": "tls", "type": "generic"})
	path := "/v1/containers/" + id + "/consumers"
	lb := map[string]string{"name": "octavia", "URL": "https://lb.example/listeners/1"}

	r := e.must(http.StatusOK, "POST", path, lb)
	m := r.JSON(t)
	if got := keys(m); !slices.Equal(got, barbicanContainerKeys) {
		t.Fatalf("POST answers %v", got)
	}
	if loc := r.Header.Get("Location"); loc != e.url+path {
		t.Fatalf("Location %q", loc)
	}
	if !strings.Contains(string(r.Body), `"consumers":[{"name":"octavia","URL":"https://lb.example/listeners/1"}]`) {
		t.Fatalf("consumers %s", r.Body)
	}
	// Idempotent.
	m = e.must(http.StatusOK, "POST", path, map[string]string{"name": " octavia ", "URL": lb["URL"]}).JSON(t)
	if len(m["consumers"].([]any)) != 1 {
		t.Fatalf("added twice: %v", m["consumers"])
	}
	for i := range 3 {
		e.must(http.StatusOK, "POST", path, map[string]string{"name": "n", "URL": fmt.Sprint("u", i)})
	}
	m = e.must(http.StatusOK, "GET", path+"?limit=2&offset=1", nil).JSON(t)
	list := m["consumers"].([]any)
	if m["total"] != 4.0 || len(list) != 2 || m["next"] != e.url+path+"?limit=2&offset=3" || m["previous"] != e.url+path+"?limit=2&offset=0" {
		t.Fatalf("page %v", m)
	}
	c := list[0].(map[string]any)
	if got := keys(c); !slices.Equal(got, []string{"URL", "created", "name", "status", "updated"}) ||
		c["URL"] != "u0" || c["status"] != "ACTIVE" || !naiveTimeRE.MatchString(c["created"].(string)) {
		t.Fatalf("consumer %v", c)
	}
	if raw := string(e.must(http.StatusOK, "GET", path+"?offset=9", nil).Body); raw != `{"consumers":[],"total":4}`+"\n" {
		t.Fatalf("past the end %s", raw)
	}

	// DELETE answers the container; removing an absent consumer too.
	m = e.must(http.StatusOK, "DELETE", path, lb).JSON(t)
	if got := keys(m); !slices.Equal(got, barbicanContainerKeys) || len(m["consumers"].([]any)) != 3 {
		t.Fatalf("DELETE answers %v", m)
	}
	e.must(http.StatusOK, "DELETE", path, lb)

	// Policy: another project may neither list nor add; audit may.
	checkError(t, e.do("GET", path, nil, "X-Project-Id", "p2"), http.StatusForbidden)
	checkError(t, e.do("POST", path, lb, "X-Project-Id", "p2"), http.StatusForbidden)
	e.must(http.StatusOK, "POST", path, lb, "X-User-Id", "aud", "X-Roles", "audit")

	for _, tc := range []struct {
		name   string
		body   any
		h      []string
		status int
	}{
		{"not JSON", `{"name":"a","URL":"b"}`, []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
		{"malformed", `{"name":`, []string{"Content-Type", "application/json"}, http.StatusBadRequest},
		{"no name", map[string]string{"URL": "u"}, nil, http.StatusBadRequest},
		{"no URL", map[string]string{"name": "n"}, nil, http.StatusBadRequest},
		{"lowercase url", map[string]string{"name": "n", "url": "u"}, nil, http.StatusBadRequest},
		{"URL not a string", map[string]any{"name": "n", "URL": 1}, nil, http.StatusBadRequest},
		{"empty name", map[string]string{"name": " ", "URL": "u"}, nil, http.StatusBadRequest},
		{"long name", map[string]string{"name": strings.Repeat("n", 37), "URL": "u"}, nil, http.StatusBadRequest},
		{"long URL", map[string]string{"name": "n", "URL": strings.Repeat("u", 256)}, nil, http.StatusBadRequest},
	} {
		for _, method := range []string{"POST", "DELETE"} {
			checkError(t, e.do(method, path, tc.body, tc.h...), tc.status)
		}
	}
	checkError(t, e.do("POST", "/v1/containers/0190a0a0-0000-7000-8000-000000000000/consumers", lb), http.StatusNotFound)
	checkError(t, e.do("GET", "/v1/containers/nope/consumers", nil), http.StatusNotFound)
	checkError(t, e.do("PUT", path, lb), http.StatusMethodNotAllowed)
}

// Over quota, Barbican answers 403 with its error body.
func TestContainerQuotaOverHTTP(t *testing.T) {
	e := newEnv(t)
	if err := e.svc.SetProjectQuotas(context.Background(), kms.Identity{Project: "ops", Roles: []string{kms.RoleServiceAdmin}},
		"p1", kms.Quotas{kms.QuotaContainers: 1}); err != nil {
		t.Fatal(err)
	}
	e.createContainer(map[string]any{"type": "generic"})
	r := e.do("POST", "/v1/containers", map[string]any{"type": "generic"})
	checkError(t, r, http.StatusForbidden)
	if !strings.Contains(string(r.Body), "Quota reached for project p1. Only 1 containers are allowed.") {
		t.Fatalf("body %s", r.Body)
	}
}

// gophercloud's containers package against the real handler.
func TestGophercloudContainers(t *testing.T) {
	e := newEnv(t, withAuth())
	ctx := context.Background()
	gopher := kms.Identity{Project: "p1", User: "gopher", Roles: []string{"creator"}}
	c := gopherClient(t, e, gopher)
	secRef := e.url + "/v1/secrets/" + e.createText("tls cert", "-----BEGIN CERTIFICATE-----",
		"X-Auth-Token", mint(t, gopher, time.Hour))

	created, err := containers.Create(ctx, c, containers.CreateOpts{
		Type: containers.CertificateContainer, Name: "lb-cert",
		SecretRefs: []containers.SecretRef{{Name: "certificate", SecretRef: secRef}},
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	id := containerRefRE.FindStringSubmatch(created.ContainerRef)[1]

	got, err := containers.Get(ctx, c, id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "lb-cert" || got.Type != "certificate" || got.Status != "ACTIVE" || got.CreatorID != "gopher" ||
		len(got.SecretRefs) != 1 || got.SecretRefs[0] != (containers.SecretRef{Name: "certificate", SecretRef: secRef}) ||
		got.Created.IsZero() || got.Updated.IsZero() || len(got.Consumers) != 0 {
		t.Fatalf("container %+v", got)
	}

	// Consumers: create (twice: idempotent), list, delete.
	opts := containers.CreateConsumerOpts{Name: "octavia", URL: "https://lb.example/1"}
	for range 2 {
		withConsumer, err := containers.CreateConsumer(ctx, c, id, opts).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if len(withConsumer.Consumers) != 1 || withConsumer.Consumers[0] != (containers.ConsumerRef{Name: "octavia", URL: "https://lb.example/1"}) {
			t.Fatalf("consumers %+v", withConsumer.Consumers)
		}
	}
	if _, err := containers.CreateConsumer(ctx, c, id, containers.CreateConsumerOpts{Name: "octavia", URL: "https://lb.example/2"}).Extract(); err != nil {
		t.Fatal(err)
	}
	// gophercloud v2.15.0 gives ToContainerListConsumersQuery to ListOpts,
	// not to ListConsumersOpts; a page of one follows the next link.
	var cs []containers.Consumer
	err = containers.ListConsumers(c, id, containers.ListOpts{Limit: 1}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		page, err := containers.ExtractConsumers(p)
		cs = append(cs, page...)
		return true, err
	})
	if err != nil || len(cs) != 2 || cs[0].Name != "octavia" || cs[1].URL != "https://lb.example/2" || cs[0].Created.IsZero() {
		t.Fatalf("listed consumers %+v %v", cs, err)
	}
	after, err := containers.DeleteConsumer(ctx, c, id, containers.DeleteConsumerOpts{Name: "octavia", URL: "https://lb.example/1"}).Extract()
	if err != nil || len(after.Consumers) != 1 {
		t.Fatalf("after delete consumer %+v %v", after, err)
	}

	// List follows the next links page by page.
	for i := range 4 {
		if _, err := containers.Create(ctx, c, containers.CreateOpts{Type: containers.GenericContainer, Name: fmt.Sprint("g", i)}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	err = containers.List(c, containers.ListOpts{Limit: 2}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		list, err := containers.ExtractContainers(p)
		for _, l := range list {
			names = append(names, l.Name)
		}
		return true, err
	})
	if err != nil || !slices.Equal(names, []string{"lb-cert", "g0", "g1", "g2", "g3"}) {
		t.Fatalf("listed %v %v", names, err)
	}

	if err := containers.Delete(ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	_, err = containers.Get(ctx, c, id).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	var unexpected gophercloud.ErrUnexpectedResponseCode
	if _, err := containers.Create(ctx, c, containers.CreateOpts{Type: "dsa"}).Extract(); !errors.As(err, &unexpected) || unexpected.Actual != http.StatusBadRequest {
		t.Fatalf("unknown type: %v", err)
	}
}

// /v1/containers/{id}/secrets: add (201 {container_ref}) and remove (204)
// one ref of a generic container.
func TestContainerSecretsAPI(t *testing.T) {
	e := newEnv(t)
	a, b := e.url+"/v1/secrets/"+e.createText("a", "x"), e.url+"/v1/secrets/"+e.createText("b", "y")
	id := e.createContainer(map[string]any{"name": "bag", "type": "generic", "secret_refs": secretRefs("a", a)})
	path := "/v1/containers/" + id + "/secrets"

	r := e.must(http.StatusCreated, "POST", path, map[string]string{"name": " b ", "secret_ref": b})
	ref := e.url + "/v1/containers/" + id
	if got := r.JSON(t); len(got) != 1 || got["container_ref"] != ref || r.Header.Get("Location") != ref {
		t.Fatalf("POST answers %s, Location %q", r.Body, r.Header.Get("Location"))
	}
	// python-barbicanclient's trailing slash; an unnamed ref.
	c := e.url + "/v1/secrets/" + e.createText("c", "z")
	e.must(http.StatusCreated, "POST", path+"/", map[string]string{"secret_ref": c})
	want := `"secret_refs":[{"name":"a","secret_ref":"` + a + `"},{"name":"b","secret_ref":"` + b + `"},{"name":null,"secret_ref":"` + c + `"}]`
	if raw := string(e.must(http.StatusOK, "GET", "/v1/containers/"+id, nil).Body); !strings.Contains(raw, want) {
		t.Fatalf("after the adds: %s", raw)
	}

	r = e.must(http.StatusNoContent, "DELETE", path, map[string]string{"name": "b", "secret_ref": b})
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body %q", r.Body)
	}
	e.must(http.StatusNoContent, "DELETE", path, map[string]string{"secret_ref": c})
	refs := e.must(http.StatusOK, "GET", "/v1/containers/"+id, nil).JSON(t)["secret_refs"].([]any)
	if len(refs) != 1 || refs[0].(map[string]any)["name"] != "a" {
		t.Fatalf("after the removes: %v", refs)
	}
	// The secrets stay.
	e.must(http.StatusOK, "GET", "/v1/secrets/"+idOfRef(t, b), nil)
}

// Every refusal of the secrets sub-resource, with Barbican's status.
func TestContainerSecretsRefused(t *testing.T) {
	e := newEnv(t)
	mine := e.url + "/v1/secrets/" + e.createText("mine", "m")
	spare := e.url + "/v1/secrets/" + e.createText("spare", "s")
	theirs := e.url + "/v1/secrets/" + e.createText("theirs", "t", "X-Project-Id", "p2")
	id := e.createContainer(map[string]any{"type": "generic", "secret_refs": secretRefs("k", mine)},
		"X-User-Id", "owner", "X-Roles", "creator")
	rsa := e.createContainer(map[string]any{"type": "rsa", "secret_refs": secretRefs("public_key", mine, "private_key", spare)})
	path := "/v1/containers/" + id + "/secrets"
	body := func(name, ref string) map[string]string { return map[string]string{"name": name, "secret_ref": ref} }
	for _, tc := range []struct {
		name, method, path string
		body               any
		h                  []string
		status             int
		desc               string
	}{
		{"not JSON", "POST", path, `{"secret_ref":"x"}`, []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, "Unexpected content type"},
		{"malformed", "POST", path, `{"secret_ref":`, []string{"Content-Type", "application/json"}, http.StatusBadRequest, "Malformed JSON"},
		{"no ref", "POST", path, map[string]string{"name": "x"}, nil, http.StatusBadRequest, "'secret_ref' is a required property"},
		{"ref not a string", "DELETE", path, map[string]any{"secret_ref": 1}, nil, http.StatusBadRequest, "'secret_ref' must be a string"},
		{"name not a string", "POST", path, map[string]any{"name": 1, "secret_ref": spare}, nil, http.StatusBadRequest, "'name' must be a string"},
		{"long name", "POST", path, body(strings.Repeat("n", 256), spare), nil, http.StatusBadRequest, "Invalid property: 'name'"},
		{"foreign host", "POST", path, body("x", "http://evil.example/v1/secrets/"+idOfRef(t, spare)), nil, http.StatusBadRequest, "configured hostname"},
		{"unknown container", "POST", "/v1/containers/0190a0a0-0000-7000-8000-000000000000/secrets", body("x", spare), nil, http.StatusNotFound, "Secrets container not found."},
		{"malformed container id", "DELETE", "/v1/containers/nope/secrets", body("k", mine), nil, http.StatusNotFound, ""},
		{"another project's secret", "POST", path, body("x", theirs), nil, http.StatusNotFound, "Secret provided doesn't exist."},
		{"unknown secret", "POST", path, body("x", e.url+"/v1/secrets/0190a0a0-0000-7000-8000-000000000000"), nil, http.StatusNotFound, "doesn't exist"},
		{"same ref", "POST", path, body("k", mine), nil, http.StatusConflict, "A secret with that name and ID is already stored"},
		{"same name", "POST", path, body("k", spare), nil, http.StatusConflict, "A secret named 'k'"},
		{"same secret", "POST", path, body("k2", mine), nil, http.StatusConflict, "as 'k'"},
		{"rsa add", "POST", "/v1/containers/" + rsa + "/secrets", body("private_key_passphrase", spare), nil, http.StatusBadRequest, "Only 'generic' containers can be modified."},
		{"rsa remove", "DELETE", "/v1/containers/" + rsa + "/secrets", body("private_key", spare), nil, http.StatusBadRequest, "Only 'generic' containers can be modified."},
		{"not in the container", "DELETE", path, body("spare", spare), nil, http.StatusNotFound, "Secret provided is not in the container"},
		{"other name", "DELETE", path, body("x", mine), nil, http.StatusNotFound, "not in the container"},
		{"remove unknown secret", "DELETE", path, body("x", e.url+"/v1/secrets/0190a0a0-0000-7000-8000-000000000000"), nil, http.StatusNotFound, "doesn't exist"},
		{"observer", "POST", path, body("x", spare), []string{"X-User-Id", "o", "X-Roles", "observer"}, http.StatusForbidden, ""},
		{"audit", "DELETE", path, body("k", mine), []string{"X-User-Id", "a", "X-Roles", "audit"}, http.StatusForbidden, ""},
		{"another project", "POST", path, body("x", theirs), []string{"X-Project-Id", "p2"}, http.StatusForbidden, ""},
		{"GET", "GET", path, nil, nil, http.StatusMethodNotAllowed, ""},
		{"PUT", "PUT", path, body("x", spare), nil, http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body, tc.h...)
			checkError(t, r, tc.status)
			if !strings.Contains(string(r.Body), tc.desc) {
				t.Fatalf("description: %s, want %q", r.Body, tc.desc)
			}
		})
	}
	if refs := e.must(http.StatusOK, "GET", "/v1/containers/"+id, nil).JSON(t)["secret_refs"].([]any); len(refs) != 1 {
		t.Fatalf("refused changes changed the container: %v", refs)
	}
	// A creator of the project may change a container that is not private,
	// not one that is.
	creator := []string{"X-User-Id", "u7", "X-Roles", "creator"}
	e.must(http.StatusCreated, "POST", path, body("spare", spare), creator...)
	e.must(http.StatusOK, "PUT", "/v1/containers/"+id+"/acl", map[string]any{"read": map[string]any{"project-access": false}})
	checkError(t, e.do("DELETE", path, body("spare", spare), creator...), http.StatusForbidden)
	e.must(http.StatusNoContent, "DELETE", path, body("spare", spare), "X-User-Id", "owner", "X-Roles", "creator")
}

// gophercloud's CreateSecretRef and DeleteSecretRef.
func TestGophercloudContainerSecretRefs(t *testing.T) {
	e := newEnv(t, withAuth())
	ctx := context.Background()
	gopher := kms.Identity{Project: "p1", User: "gopher", Roles: []string{"creator"}}
	c := gopherClient(t, e, gopher)
	tok := []string{"X-Auth-Token", mint(t, gopher, time.Hour)}
	key, cert := e.url+"/v1/secrets/"+e.createText("key", "k", tok...), e.url+"/v1/secrets/"+e.createText("cert", "c", tok...)
	created, err := containers.Create(ctx, c, containers.CreateOpts{Type: containers.GenericContainer, Name: "tls",
		SecretRefs: []containers.SecretRef{{Name: "key", SecretRef: key}}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	id := containerRefRE.FindStringSubmatch(created.ContainerRef)[1]

	added, err := containers.CreateSecretRef(ctx, c, id, containers.SecretRef{Name: "cert", SecretRef: cert}).Extract()
	if err != nil || added.ContainerRef != created.ContainerRef {
		t.Fatalf("CreateSecretRef: %+v %v", added, err)
	}
	got, err := containers.Get(ctx, c, id).Extract()
	if err != nil || !slices.Equal(got.SecretRefs, []containers.SecretRef{{Name: "key", SecretRef: key}, {Name: "cert", SecretRef: cert}}) {
		t.Fatalf("container %+v %v", got, err)
	}
	_, err = containers.CreateSecretRef(ctx, c, id, containers.SecretRef{Name: "cert", SecretRef: cert}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("the same ref again: %v", err)
	}
	if err := containers.DeleteSecretRef(ctx, c, id, containers.SecretRef{Name: "key", SecretRef: key}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	err = containers.DeleteSecretRef(ctx, c, id, containers.SecretRef{Name: "key", SecretRef: key}).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("removed twice: %v", err)
	}
	if got, err = containers.Get(ctx, c, id).Extract(); err != nil || len(got.SecretRefs) != 1 || got.SecretRefs[0].Name != "cert" {
		t.Fatalf("after DeleteSecretRef %+v %v", got, err)
	}
}
