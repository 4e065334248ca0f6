package barbican

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/acls"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/containers"

	"github.com/keywarden/keywarden/kms"
)

// The ACL document of a container, step by step: what each PUT, PATCH and
// DELETE leaves, as the same calls leave a secret's (acls_test.go).
func TestContainerACLDocument(t *testing.T) {
	e := newEnv(t)
	id := e.createContainer(map[string]any{"type": "generic"})
	base := "/v1/containers/" + id + "/acl"
	read := func(m map[string]any) map[string]any { return map[string]any{"read": m} }
	for _, step := range []struct {
		method string
		body   any
		want   string // the GET afterwards, created and updated left out
	}{
		{"", nil, `{"project-access":true}`},
		{"PUT", read(map[string]any{"users": []string{"u2", "u2", "u3"}, "project-access": false}), `{"project-access":false,"users":["u2","u3"]}`},
		{"PATCH", read(map[string]any{"project-access": true}), `{"project-access":true,"users":["u2","u3"]}`},
		{"PATCH", read(map[string]any{"users": []string{}}), `{"project-access":true,"users":[]}`},
		{"PATCH", map[string]any{}, `{"project-access":true,"users":[]}`},
		{"PUT", read(map[string]any{"users": []string{"u5"}}), `{"project-access":true,"users":["u5"]}`},
		{"PUT", read(map[string]any{"project-access": false}), `{"project-access":false,"users":[]}`},
		{"PUT", map[string]any{}, `{"project-access":true}`},
		{"PATCH", read(map[string]any{"users": []string{"u9"}}), `{"project-access":true,"users":["u9"]}`},
		{"DELETE", nil, `{"project-access":true}`},
	} {
		if step.method == "DELETE" {
			if r := e.must(http.StatusOK, "DELETE", base, nil); len(r.Body) != 0 {
				t.Fatalf("DELETE answers %q", r.Body)
			}
		} else if step.method != "" {
			got := e.must(http.StatusOK, step.method, base, step.body).JSON(t)
			if len(got) != 1 || got["acl_ref"] != e.url+base {
				t.Fatalf("%s answers %v", step.method, got)
			}
		}
		op := e.must(http.StatusOK, "GET", base, nil).JSON(t)["read"].(map[string]any)
		created, _ := op["created"].(string)
		updated, _ := op["updated"].(string)
		if _, set := op["users"]; set != naiveTimeRE.MatchString(created) || set != naiveTimeRE.MatchString(updated) {
			t.Fatalf("after %s %v: created/updated %v", step.method, step.body, op)
		}
		delete(op, "created")
		delete(op, "updated")
		if got, _ := json.Marshal(op); string(got) != step.want {
			t.Fatalf("after %s %v: %s, want %s", step.method, step.body, got, step.want)
		}
	}

	for _, body := range []any{
		map[string]any{"write": map[string]any{"users": []string{"u"}}},
		read(map[string]any{"users": "u"}),
		read(map[string]any{"project-access": "no"}),
		read(map[string]any{"extra": true}),
		map[string]any{"read": "all"},
		read(map[string]any{"users": []string{strings.Repeat("u", 256)}}),
	} {
		for _, method := range []string{"PUT", "PATCH"} {
			checkError(t, e.do(method, base, body), http.StatusBadRequest)
		}
	}
	checkError(t, e.do("PUT", base, `{"read":{}}`, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
	checkError(t, e.do("POST", base, map[string]any{}), http.StatusMethodNotAllowed)
	checkError(t, e.do("GET", "/v1/containers/0190a0a0-0000-7000-8000-000000000000/acl", nil), http.StatusNotFound)
	checkError(t, e.do("PUT", "/v1/containers/nope/acl", map[string]any{}), http.StatusNotFound)
}

// A private container over HTTP: its ACL users read it, of any project,
// not the secrets it names; project members it does not name cannot; only
// the owner or an admin changes the ACL.
func TestContainerACLAccess(t *testing.T) {
	e := newEnv(t)
	owner := []string{"X-User-Id", "owner", "X-Roles", "creator"}
	sec := e.createText("inside", "x", owner...)
	id := e.createContainer(map[string]any{"type": "generic", "secret_refs": secretRefs("k", e.url+"/v1/secrets/"+sec)}, owner...)
	base := "/v1/containers/" + id
	peer := []string{"X-User-Id", "u7", "X-Roles", "creator"}
	guest := []string{"X-Project-Id", "p2", "X-User-Id", "gus", "X-Roles", "observer"}
	share := map[string]any{"read": map[string]any{"users": []string{"gus"}, "project-access": false}}

	for _, method := range []string{"PUT", "PATCH"} {
		checkError(t, e.do(method, base+"/acl", share, peer...), http.StatusForbidden)
	}
	checkError(t, e.do("DELETE", base+"/acl", nil, peer...), http.StatusForbidden)
	checkError(t, e.do("GET", base, nil, guest...), http.StatusForbidden)
	e.must(http.StatusOK, "PUT", base+"/acl", share, owner...)

	m := e.must(http.StatusOK, "GET", base, nil, guest...).JSON(t)
	if refs := m["secret_refs"].([]any); len(refs) != 1 {
		t.Fatalf("the ACL user reads %v", m)
	}
	e.must(http.StatusOK, "GET", base+"/consumers", nil, guest...)
	checkError(t, e.do("GET", "/v1/secrets/"+sec, nil, guest...), http.StatusForbidden)
	checkError(t, e.do("GET", base+"/acl", nil, guest...), http.StatusForbidden) // container_acls:get: its project only
	checkError(t, e.do("GET", base, nil, peer...), http.StatusForbidden)
	if m := e.must(http.StatusOK, "GET", "/v1/containers", nil, peer...).JSON(t); m["total"] != 0.0 {
		t.Fatalf("a private container listed to a peer: %v", m)
	}
	e.must(http.StatusOK, "GET", base+"/acl", nil, peer...) // but the project sees the ACL
	e.must(http.StatusOK, "GET", base, nil)                 // and its admin the container

	e.must(http.StatusOK, "DELETE", base+"/acl", nil, owner...)
	e.must(http.StatusOK, "GET", base, nil, peer...)
	checkError(t, e.do("GET", base, nil, guest...), http.StatusForbidden)
}

// gophercloud's container ACL functions against the real handler.
func TestGophercloudContainerACLs(t *testing.T) {
	e := newEnv(t, withAuth())
	ctx := context.Background()
	gopher := kms.Identity{Project: "p1", User: "gopher", Roles: []string{"creator"}}
	c := gopherClient(t, e, gopher)
	created, err := containers.Create(ctx, c, containers.CreateOpts{Type: containers.GenericContainer, Name: "shared"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	id := containerRefRE.FindStringSubmatch(created.ContainerRef)[1]

	users, private := []string{"reader"}, false
	ref, err := acls.SetContainerACL(ctx, c, id, acls.SetOpts{{Type: "read", Users: &users, ProjectAccess: &private}}).Extract()
	if err != nil || *ref != acls.ACLRef(created.ContainerRef+"/acl") {
		t.Fatalf("SetContainerACL %v %v", ref, err)
	}
	acl, err := acls.GetContainerACL(ctx, c, id).Extract()
	if err != nil || !slices.Equal((*acl)["read"].Users, users) || (*acl)["read"].ProjectAccess || (*acl)["read"].Created.IsZero() {
		t.Fatalf("acl %+v, %v", acl, err)
	}
	reader := gopherClient(t, e, kms.Identity{Project: "p9", User: "reader", Roles: []string{"observer"}})
	if got, err := containers.Get(ctx, reader, id).Extract(); err != nil || got.Name != "shared" {
		t.Fatalf("the ACL user reads %+v %v", got, err)
	}
	public := true
	if _, err := acls.UpdateContainerACL(ctx, c, id, acls.SetOpts{{Type: "read", ProjectAccess: &public}}).Extract(); err != nil {
		t.Fatal(err)
	}
	if err := acls.DeleteContainerACL(ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := containers.Get(ctx, reader, id).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("read after the ACL went: %v", err)
	}
}
