package barbican

import (
	"net/http"
	"slices"
	"testing"
)

func TestMetadataCRUD(t *testing.T) {
	e := newEnv(t)
	id := e.createText("m", "x")
	base := "/v1/secrets/" + id + "/metadata"

	if got := string(e.must(http.StatusOK, "GET", base, nil).Body); got != "{\"metadata\":{}}\n" {
		t.Errorf("empty metadata %q", got)
	}
	r := e.must(http.StatusCreated, "PUT", base, map[string]any{"metadata": map[string]string{"Foo": " bar ", "os_encrypt": "luks"}})
	if got := r.JSON(t)["metadata_ref"]; got != e.url+base {
		t.Errorf("metadata_ref %v", got)
	}
	m := e.must(http.StatusOK, "GET", base, nil).JSON(t)["metadata"].(map[string]any)
	if len(m) != 2 || m["foo"] != "bar" || m["os_encrypt"] != "luks" {
		t.Errorf("metadata %v", m)
	}
	// PUT replaces.
	e.must(http.StatusCreated, "PUT", base, map[string]any{"metadata": map[string]string{"only": "one"}})
	m = e.must(http.StatusOK, "GET", base, nil).JSON(t)["metadata"].(map[string]any)
	if len(m) != 1 || m["only"] != "one" {
		t.Errorf("after replace %v", m)
	}

	r = e.must(http.StatusCreated, "POST", base, map[string]any{"key": "Key2", "value": "v2"})
	if got := r.JSON(t); got["key"] != "key2" || got["value"] != "v2" || len(got) != 2 {
		t.Errorf("POST answer %v", got)
	}
	if loc := r.Header.Get("Location"); loc != e.url+base+"/key2" {
		t.Errorf("Location %q", loc)
	}
	checkError(t, e.do("POST", base, map[string]any{"key": "key2", "value": "again"}), http.StatusConflict)

	got := e.must(http.StatusOK, "GET", base+"/key2", nil).JSON(t)
	if got["key"] != "key2" || got["value"] != "v2" {
		t.Errorf("metadatum %v", got)
	}
	got = e.must(http.StatusOK, "PUT", base+"/key2", map[string]any{"key": "key2", "value": "v3"}).JSON(t)
	if got["key"] != "key2" || got["value"] != "v3" {
		t.Errorf("PUT metadatum answer %v", got)
	}
	if v := e.must(http.StatusOK, "GET", base+"/key2", nil).JSON(t)["value"]; v != "v3" {
		t.Errorf("value after PUT %v", v)
	}
	checkError(t, e.do("PUT", base+"/key2", map[string]any{"key": "other", "value": "v"}), http.StatusConflict)
	checkError(t, e.do("PUT", base+"/missing", map[string]any{"key": "missing", "value": "v"}), http.StatusNotFound)
	checkError(t, e.do("PUT", base+"/missing", map[string]any{"key": "other", "value": "v"}), http.StatusNotFound)

	e.must(http.StatusNoContent, "DELETE", base+"/key2", nil)
	checkError(t, e.do("GET", base+"/key2", nil), http.StatusNotFound)
	checkError(t, e.do("DELETE", base+"/key2", nil), http.StatusNotFound)
	m = e.must(http.StatusOK, "GET", base, nil).JSON(t)["metadata"].(map[string]any)
	if !slices.Equal(keys(m), []string{"only"}) {
		t.Errorf("after delete %v", m)
	}
}

func TestMetadataInvalidInput(t *testing.T) {
	e := newEnv(t)
	id := e.createText("m", "x")
	base := "/v1/secrets/" + id + "/metadata"
	for name, c := range map[string]struct {
		method, path string
		body         any
	}{
		"bad key":              {"PUT", base, map[string]any{"metadata": map[string]string{"a b": "c"}}},
		"value not a string":   {"PUT", base, map[string]any{"metadata": map[string]any{"a": 1}}},
		"metadata missing":     {"PUT", base, map[string]any{"meta": map[string]string{}}},
		"metadata not object":  {"PUT", base, map[string]any{"metadata": "x"}},
		"metadatum extra":      {"POST", base, map[string]any{"key": "a", "value": "b", "x": "y"}},
		"metadatum no value":   {"POST", base, map[string]any{"key": "a"}},
		"metadatum no key":     {"POST", base, map[string]any{"value": "a"}},
		"metadatum bad key":    {"POST", base, map[string]any{"key": "a/b", "value": "x"}},
		"metadatum value type": {"POST", base, map[string]any{"key": "a", "value": 5}},
		"malformed":            {"POST", base, `{"key":`},
	} {
		t.Run(name, func(t *testing.T) {
			var h []string
			if s, ok := c.body.(string); ok {
				h = []string{"Content-Type", "application/json"}
				c.body = s
			}
			checkError(t, e.do(c.method, c.path, c.body, h...), http.StatusBadRequest)
		})
	}
	checkError(t, e.do("PUT", base, `{"metadata":{}}`, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
	checkError(t, e.do("POST", base, `{"key":"a","value":"b"}`), http.StatusUnsupportedMediaType)
	checkError(t, e.do("PATCH", base, map[string]any{}), http.StatusMethodNotAllowed)
}
