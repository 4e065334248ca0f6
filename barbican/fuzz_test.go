package barbican

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAPI sends arbitrary requests to every resource of the adapter: bad
// input must get a Barbican error body in the protocol's form, never a 5xx
// and never a panic (which the frame would turn into a 500). {S} and {C} in
// a path or body stand for a live secret and container, so mutations keep
// reaching the handlers behind the id checks.
func FuzzAPI(f *testing.F) {
	e := newEnv(f)
	sec := e.createText("fuzz", "payload")
	ref := e.url + "/v1/secrets/" + sec
	c := e.must(http.StatusCreated, "POST", "/v1/containers", map[string]any{
		"type": "generic", "secret_refs": []map[string]string{{"name": "a", "secret_ref": ref}}}).JSON(f)["container_ref"].(string)
	cont := c[strings.LastIndex(c, "/")+1:]
	h := e.srv.Config.Handler
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
	roles := []string{"admin", "creator", "observer", "audit", "key-manager:service-admin", "service", ""}

	for _, s := range []struct {
		m    byte
		path string
		body string
	}{
		{1, "/v1/secrets", `{"name":"x","payload":"eA==","payload_content_type":"application/octet-stream","payload_content_encoding":"base64"}`},
		{0, "/v1/secrets/{S}/payload", ``},
		{2, "/v1/secrets/{S}/metadata", `{"metadata":{"os_encrypt_key_deletion_policy":"on_image_deletion"}}`},
		{1, "/v1/secrets/{S}/consumers", `{"service":"nova","resource_type":"disk","resource_id":"d1"}`},
		{4, "/v1/secrets/{S}/consumers", `{"service":"nova","resource_type":"disk","resource_id":"d1"}`},
		{2, "/v1/secrets/{S}/acl", `{"read":{"users":["u2"],"project-access":false}}`},
		{1, "/v1/secrets/{S}/clone", `{"project":"p2","consumer":{"service":"cinder","resource_type":"volume","resource_id":"v"}}`},
		{1, "/v1/orders", `{"type":"passphrase","meta":{"consumer":{"service":"nova","resource_type":"disk","resource_id":"x"},"deletion_policy":"on_last_consumer"}}`},
		{1, "/v1/containers", `{"type":"rsa","secret_refs":[{"name":"private_key","secret_ref":"{R}"}]}`},
		{1, "/v1/containers/{C}/secrets", `{"name":"b","secret_ref":"{R}"}`},
		{1, "/v1/containers/{C}/consumers", `{"name":"lb","URL":"http://lb/1"}`},
		{3, "/v1/containers/{C}/acl", `{"read":{"users":["u3"]}}`},
		{2, "/v1/project-quotas/p1", `{"project_quotas":{"secrets":5,"orders":null}}`},
		{4, "/v1/orphans?grace=0s&older_than=1h", ``},
		{0, "/v1/secrets?limit=3&offset=1&sort=name:desc&created=gt:2020-01-01T00:00:00&acl_only=true", ``},
	} {
		f.Add(s.m, s.path, []byte(s.body), byte(0))
	}
	fill := func(s string) string {
		return strings.NewReplacer("{S}", sec, "{C}", cont, "{R}", ref).Replace(s)
	}
	f.Fuzz(func(t *testing.T, m byte, path string, body []byte, role byte) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n#") {
			return // not a request target a client can send
		}
		req, err := http.NewRequest(methods[int(m)%len(methods)], "http://kms"+fill(path), bytes.NewReader([]byte(fill(string(body)))))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Project-Id", "p1")
		req.Header.Set("X-User-Id", "u1")
		req.Header.Set("X-Roles", roles[int(role)%len(roles)])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s\n%s", req.Method, path, body, w.Code, w.Body, e.logs)
		}
		if w.Code >= 400 && req.Method != "HEAD" {
			var b struct {
				Code        int    `json:"code"`
				Title       string `json:"title"`
				Description string `json:"description"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Code != w.Code || b.Description == "" {
				t.Fatalf("%s %s: %d with a body that is not Barbican's: %q", req.Method, path, w.Code, w.Body)
			}
		}
	})
}
