package barbican

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestACLDefault(t *testing.T) {
	e := newEnv(t)
	id := e.createText("a", "x")
	got := strings.TrimSpace(string(e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/acl", nil).Body))
	if got != `{"read":{"project-access":true}}` {
		t.Errorf("default ACL %s", got)
	}
}

func TestACLPutPatchDelete(t *testing.T) {
	e := newEnv(t)
	id := e.createText("private", "x")
	base := "/v1/secrets/" + id + "/acl"
	r := e.must(http.StatusOK, "PUT", base, map[string]any{"read": map[string]any{"users": []string{"u2", "u2", "u3"}, "project-access": false}})
	if got := r.JSON(t); got["acl_ref"] != e.url+base || len(got) != 1 {
		t.Errorf("PUT answer %v", got)
	}
	read := e.must(http.StatusOK, "GET", base, nil).JSON(t)["read"].(map[string]any)
	if got := keys(read); !slices.Equal(got, []string{"created", "project-access", "updated", "users"}) {
		t.Errorf("ACL fields %v", got)
	}
	if read["project-access"] != false || len(read["users"].([]any)) != 2 || !timeRE.MatchString(read["created"].(string)) {
		t.Errorf("ACL %v", read)
	}
	// Private: another project member (observer, not listed) cannot read; a listed user can.
	checkError(t, e.do("GET", "/v1/secrets/"+id, nil, "X-User-Id", "u9", "X-Roles", "observer"), http.StatusForbidden)
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload", nil, "X-User-Id", "u2", "X-Roles", "observer")

	// PATCH merges: users stay.
	e.must(http.StatusOK, "PATCH", base, map[string]any{"read": map[string]any{"project-access": true}})
	read = e.must(http.StatusOK, "GET", base, nil).JSON(t)["read"].(map[string]any)
	if read["project-access"] != true || len(read["users"].([]any)) != 2 {
		t.Errorf("after PATCH %v", read)
	}
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil, "X-User-Id", "u9", "X-Roles", "observer")
	e.must(http.StatusOK, "PATCH", base, map[string]any{"read": map[string]any{"users": []string{}}})
	read = e.must(http.StatusOK, "GET", base, nil).JSON(t)["read"].(map[string]any)
	if us, ok := read["users"].([]any); !ok || len(us) != 0 {
		t.Errorf("users after PATCH to none: %v", read["users"])
	}

	// PUT replaces: project-access back to true by default.
	e.must(http.StatusOK, "PUT", base, map[string]any{"read": map[string]any{"users": []string{"u5"}}})
	read = e.must(http.StatusOK, "GET", base, nil).JSON(t)["read"].(map[string]any)
	if read["project-access"] != true || len(read["users"].([]any)) != 1 {
		t.Errorf("after PUT %v", read)
	}

	e.must(http.StatusOK, "DELETE", base, nil)
	if got := strings.TrimSpace(string(e.must(http.StatusOK, "GET", base, nil).Body)); got != `{"read":{"project-access":true}}` {
		t.Errorf("after DELETE %s", got)
	}
}

func TestACLPutEmptyRemovesIt(t *testing.T) {
	e := newEnv(t)
	id := e.createText("a", "x")
	base := "/v1/secrets/" + id + "/acl"
	e.must(http.StatusOK, "PUT", base, map[string]any{"read": map[string]any{"project-access": false}})
	e.must(http.StatusOK, "PUT", base, map[string]any{})
	if got := strings.TrimSpace(string(e.must(http.StatusOK, "GET", base, nil).Body)); got != `{"read":{"project-access":true}}` {
		t.Errorf("after empty PUT %s", got)
	}
}

func TestACLInvalidInput(t *testing.T) {
	e := newEnv(t)
	id := e.createText("a", "x")
	base := "/v1/secrets/" + id + "/acl"
	for _, body := range []map[string]any{
		{"write": map[string]any{"users": []string{"u"}}},
		{"read": map[string]any{"users": "u"}},
		{"read": map[string]any{"users": []any{1}}},
		{"read": map[string]any{"project-access": "no"}},
		{"read": map[string]any{"extra": true}},
		{"read": "all"},
		{"read": map[string]any{"users": []string{strings.Repeat("u", 256)}}},
	} {
		checkError(t, e.do("PUT", base, body), http.StatusBadRequest)
		checkError(t, e.do("PATCH", base, body), http.StatusBadRequest)
	}
	checkError(t, e.do("PUT", base, `{"read":{}}`, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
	checkError(t, e.do("POST", base, map[string]any{}), http.StatusMethodNotAllowed)
}

func TestACLChangeNeedsOwnerOrAdmin(t *testing.T) {
	e := newEnv(t)
	id := e.createText("a", "x", "X-Roles", "creator")
	base := "/v1/secrets/" + id + "/acl"
	other := []string{"X-User-Id", "u7", "X-Roles", "creator"}
	checkError(t, e.do("PUT", base, map[string]any{"read": map[string]any{"users": []string{"u7"}}}, other...), http.StatusForbidden)
	checkError(t, e.do("PATCH", base, map[string]any{}, other...), http.StatusForbidden)
	checkError(t, e.do("DELETE", base, nil, other...), http.StatusForbidden)
	e.must(http.StatusOK, "PATCH", base, map[string]any{"read": map[string]any{"users": []string{"u7"}}}, "X-Roles", "creator")
}

// acl_only=true lists what other projects shared with the caller, and
// nothing of the caller's own project.
func TestListACLOnly(t *testing.T) {
	e := newEnv(t)
	shared := e.createText("shared", "x")
	e.createText("private", "y")
	e.must(http.StatusOK, "PUT", "/v1/secrets/"+shared+"/acl", map[string]any{"read": map[string]any{"users": []string{"u7"}}})
	u7 := []string{"X-Project-Id", "p-other", "X-User-Id", "u7", "X-Roles", "observer"}
	e.createText("u7-own", "z", "X-Project-Id", "p-other", "X-User-Id", "u7", "X-Roles", "creator")

	m := e.must(http.StatusOK, "GET", "/v1/secrets?acl_only=True", nil, u7...).JSON(t)
	if got := names(t, m); len(got) != 1 || got[0] != "shared" || m["total"] != 1.0 {
		t.Fatalf("acl_only list %v total %v", got, m["total"])
	}
	if got := names(t, e.must(http.StatusOK, "GET", "/v1/secrets", nil, u7...).JSON(t)); len(got) != 1 || got[0] != "u7-own" {
		t.Fatalf("plain list %v", got)
	}
	e.must(http.StatusOK, "DELETE", "/v1/secrets/"+shared+"/acl", nil)
	if got := names(t, e.must(http.StatusOK, "GET", "/v1/secrets?acl_only=true", nil, u7...).JSON(t)); len(got) != 0 {
		t.Fatalf("after the ACL went: %v", got)
	}
}
