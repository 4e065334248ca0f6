package barbican

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

const mv11, mv12 = "key-manager 1.1", "key-manager 1.2"

// barbicanSecretKeys are exactly the members of a secret at 1.0.
var barbicanSecretKeys = []string{"algorithm", "bit_length", "content_types", "created", "creator_id",
	"expiration", "mode", "name", "secret_ref", "secret_type", "status", "updated"}

func consumer(service, typ, id string) map[string]string {
	return map[string]string{"service": service, "resource_type": typ, "resource_id": id}
}

func TestSecretConsumersAPI(t *testing.T) {
	e := newEnv(t)
	id := e.createText("vol key", "s3cret")
	path := "/v1/secrets/" + id + "/consumers"
	img := consumer("image", "image", "img-1")

	// POST answers the secret; a 1.0 client sees exactly Barbican's members.
	r := e.must(http.StatusOK, "POST", path, img)
	if got := keys(r.JSON(t)); !slices.Equal(got, barbicanSecretKeys) {
		t.Fatalf("1.0 body members %v", got)
	}
	if loc := r.Header.Get("Location"); !strings.HasSuffix(loc, path) {
		t.Fatalf("Location %q", loc)
	}
	// Idempotent; from 1.1 the secret lists its consumers.
	r = e.must(http.StatusOK, "POST", path, img, "OpenStack-API-Version", mv11)
	cs, _ := r.JSON(t)["consumers"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["resource_id"] != "img-1" {
		t.Fatalf("1.1 consumers %v", r.JSON(t)["consumers"])
	}
	e.must(http.StatusOK, "POST", path, consumer("volume", "volume", "v-1"))
	e.must(http.StatusOK, "POST", path, consumer("volume", "volume", "v-2"))

	// Paged listing with Barbican's links.
	r = e.must(http.StatusOK, "GET", path+"?limit=1&offset=1", nil)
	m := r.JSON(t)
	list, _ := m["consumers"].([]any)
	if m["total"] != 3.0 || len(list) != 1 || !strings.HasSuffix(m["next"].(string), path+"?limit=1&offset=2") ||
		!strings.HasSuffix(m["previous"].(string), path+"?limit=1&offset=0") {
		t.Fatalf("page %s", r.Body)
	}
	first := list[0].(map[string]any)
	if first["resource_id"] != "v-1" || first["status"] != "ACTIVE" || first["created"] == "" ||
		strings.HasSuffix(first["created"].(string), "Z") {
		t.Fatalf("consumer %v", first)
	}

	// Delete refused while in use, naming the consumers; force needs 1.2 and an admin.
	r = e.do("DELETE", "/v1/secrets/"+id, nil)
	checkError(t, r, http.StatusConflict)
	if !strings.Contains(string(r.Body), "image/image/img-1") {
		t.Fatalf("409 does not name the consumers: %s", r.Body)
	}
	checkError(t, e.do("DELETE", "/v1/secrets/"+id+"?force=true", nil, "OpenStack-API-Version", mv12,
		"X-Roles", "creator"), http.StatusForbidden)
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id+"/payload", nil)

	// Remove: 200 with the secret, idempotent.
	for range 2 {
		r = e.must(http.StatusOK, "DELETE", path, img, "OpenStack-API-Version", mv11)
		if cs, _ := r.JSON(t)["consumers"].([]any); len(cs) != 2 {
			t.Fatalf("after removal %s", r.Body)
		}
	}
	e.must(http.StatusNoContent, "DELETE", "/v1/secrets/"+id+"?force=true", nil, "OpenStack-API-Version", mv12)
	checkError(t, e.do("GET", path, nil), http.StatusNotFound)
}

func TestSecretConsumersRefusals(t *testing.T) {
	e := newEnv(t)
	id := e.createText("k", "v")
	path := "/v1/secrets/" + id + "/consumers"
	checkError(t, e.do("POST", path, map[string]string{"service": "image", "resource_type": "image"}), http.StatusBadRequest)
	checkError(t, e.do("POST", path, map[string]any{"service": 1, "resource_type": "image", "resource_id": "x"}), http.StatusBadRequest)
	checkError(t, e.do("POST", path, `{"service":"a","resource_type":"b","resource_id":"c"}`, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
	checkError(t, e.do("POST", path, consumer("image", "image", "1"), "X-Project-Id", "p2"), http.StatusForbidden)
	checkError(t, e.do("POST", "/v1/secrets/not-a-uuid/consumers", consumer("image", "image", "1")), http.StatusNotFound)
	checkError(t, e.do("POST", "/v1/secrets/00000000-0000-0000-0000-000000000000/consumers", consumer("image", "image", "1")), http.StatusNotFound)
	checkError(t, e.do("PUT", path, consumer("image", "image", "1")), http.StatusMethodNotAllowed)
	// A "service" of another project is no one there (issue 8 #2): it can
	// neither add nor list consumers.
	checkError(t, e.do("POST", path, consumer("image", "image", "1"), "X-Project-Id", "service", "X-Roles", "service,admin"), http.StatusForbidden)
	checkError(t, e.do("GET", path, nil, "X-Project-Id", "service", "X-Roles", "service,admin"), http.StatusForbidden)
	e.must(http.StatusOK, "POST", path, consumer("image", "image", "1"))
	// Barbican's ownership rule: another project's reader may not remove
	// a consumer it did not register.
	e.must(http.StatusOK, "PUT", "/v1/secrets/"+id+"/acl", map[string]any{"read": map[string]any{"users": []string{"eve"}}})
	checkError(t, e.do("DELETE", path, consumer("image", "image", "1"), "X-Project-Id", "p2", "X-User-Id", "eve", "X-Roles", "creator"), http.StatusForbidden)
	e.must(http.StatusOK, "POST", path, consumer("image", "image", "2"), "X-Project-Id", "p2", "X-User-Id", "eve", "X-Roles", "creator")
	e.must(http.StatusOK, "DELETE", path, consumer("image", "image", "2"), "X-Project-Id", "p2", "X-User-Id", "eve", "X-Roles", "creator")
}

// Metadata os_encrypt_key_deletion_policy=on_image_deletion: removing the
// last consumer destroys the secret.
func TestConsumerRemovalDestroys(t *testing.T) {
	e := newEnv(t)
	id := e.createText("image key", "p4ss")
	e.must(http.StatusCreated, "PUT", "/v1/secrets/"+id+"/metadata",
		map[string]any{"metadata": map[string]string{"os_encrypt_key_deletion_policy": "on_image_deletion"}})
	path := "/v1/secrets/" + id + "/consumers"
	e.must(http.StatusOK, "POST", path, consumer("image", "image", "img-9"))
	r := e.must(http.StatusOK, "DELETE", path, consumer("image", "image", "img-9"))
	if r.Header.Get(destroyedHeader) != "true" {
		t.Fatal("no destroyed header")
	}
	if got := keys(r.JSON(t)); !slices.Equal(got, barbicanSecretKeys) {
		t.Fatalf("body members %v", got)
	}
	checkError(t, e.do("GET", "/v1/secrets/"+id, nil), http.StatusNotFound)
}
