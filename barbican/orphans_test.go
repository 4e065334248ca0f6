package barbican

import (
	"net/http"
	"testing"
	"time"

	"github.com/keywarden/keywarden/consumers"
)

func TestOrphansEndpoint(t *testing.T) {
	e := newEnv(t)
	id := e.createText("image-key", "x")
	e.must(http.StatusCreated, "PUT", "/v1/secrets/"+id+"/metadata",
		map[string]any{"metadata": map[string]any{"os_encrypt_key_deletion_policy": "on_image_deletion"}})
	kept := e.createText("kept", "y")
	op := []string{"X-Project-Id", "ops", "X-User-Id", "oscar", "X-Roles", "key-manager:service-admin"}

	// Tenants, even a project admin, are refused: orphans span projects.
	checkError(t, e.do("GET", "/v1/orphans", nil, "X-Roles", "admin"), http.StatusForbidden)
	checkError(t, e.do("DELETE", "/v1/orphans", nil, "X-Roles", "admin"), http.StatusForbidden)
	checkError(t, e.do("GET", "/v1/orphans?grace=soon", nil, op...), http.StatusBadRequest)
	checkError(t, e.do("GET", "/v1/orphans?older_than=-1h", nil, op...), http.StatusBadRequest)
	// Below the floor (orphans.min_age, 1 h): refused, destroying nothing.
	checkError(t, e.do("DELETE", "/v1/orphans?grace=0s", nil, op...), http.StatusBadRequest)
	checkError(t, e.do("DELETE", "/v1/orphans?grace=1m&older_than=1ns", nil, op...), http.StatusBadRequest)

	// Within the default grace of an hour nothing is an orphan yet.
	if m := e.must(http.StatusOK, "GET", "/v1/orphans", nil, op...).JSON(t); m["total"] != 0.0 {
		t.Fatalf("within grace: %v", m)
	}
	e.clock.Advance(1000 * time.Hour)
	m := e.must(http.StatusOK, "GET", "/v1/orphans", nil, op...).JSON(t)
	list := m["orphans"].([]any)
	if m["total"] != 1.0 || len(list) != 1 {
		t.Fatalf("list: %v", m)
	}
	o := list[0].(map[string]any)
	if o["secret_ref"] != e.url+"/v1/secrets/"+id || o["deletion_policy"] != "on_last_consumer" || o["destroyed"] != false {
		t.Fatalf("orphan: %v", o)
	}
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil) // listing destroys nothing

	m = e.must(http.StatusOK, "DELETE", "/v1/orphans?older_than=2h", nil, op...).JSON(t)
	if m["destroyed"] != 1.0 || m["orphans"].([]any)[0].(map[string]any)["destroyed"] != true {
		t.Fatalf("collect: %v", m)
	}
	checkError(t, e.do("GET", "/v1/secrets/"+id, nil), http.StatusNotFound)
	e.must(http.StatusOK, "GET", "/v1/secrets/"+kept, nil) // retain: never an orphan
	checkError(t, e.do("POST", "/v1/orphans", nil, op...), http.StatusMethodNotAllowed)
}

// The operator's configured rule (orphans.grace) is what a query without
// grace applies, not a constant: a longer grace keeps a secret out longer.
func TestOrphansDefaultIsConfiguredRule(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OrphanRule = consumers.OrphanRule{Grace: 48 * time.Hour} })
	id := e.createText("image-key", "x")
	e.must(http.StatusCreated, "PUT", "/v1/secrets/"+id+"/metadata",
		map[string]any{"metadata": map[string]any{"os_encrypt_key_deletion_policy": "on_image_deletion"}})
	op := []string{"X-Project-Id", "ops", "X-User-Id", "oscar", "X-Roles", "key-manager:service-admin"}

	e.clock.Advance(24 * time.Hour) // past the built-in hour, within the configured 48 h
	if m := e.must(http.StatusOK, "DELETE", "/v1/orphans", nil, op...).JSON(t); m["total"] != 0.0 {
		t.Fatalf("collected within the configured grace: %v", m)
	}
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil)
	// The query still overrides the configured rule.
	if m := e.must(http.StatusOK, "GET", "/v1/orphans?grace=2h", nil, op...).JSON(t); m["total"] != 1.0 {
		t.Fatalf("query grace: %v", m)
	}
	e.clock.Advance(25 * time.Hour)
	if m := e.must(http.StatusOK, "DELETE", "/v1/orphans", nil, op...).JSON(t); m["destroyed"] != 1.0 {
		t.Fatalf("past the configured grace: %v", m)
	}
}
