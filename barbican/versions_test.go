package barbican

import (
	"net/http"
	"regexp"
	"slices"
	"testing"
)

func TestVersionsRootDefaultIsPreMicroversionShape(t *testing.T) {
	e := newEnv(t, withAuth())
	r := e.must(http.StatusMultipleChoices, "GET", "/", nil, "X-Project-Id", "-")
	if got := r.Header.Get("OpenStack-API-Version"); got != "key-manager 1.0" {
		t.Errorf("echoed microversion %q", got)
	}
	if !slices.Contains(r.Header.Values("Vary"), "OpenStack-API-Version") {
		t.Errorf("Vary = %q", r.Header.Values("Vary"))
	}
	m := r.JSON(t)
	values := m["versions"].(map[string]any)["values"].([]any)
	if len(values) != 1 {
		t.Fatalf("values %v", values)
	}
	v := values[0].(map[string]any)
	if got := keys(v); !slices.Equal(got, []string{"id", "links", "media-types", "status"}) {
		t.Errorf("1.0 version fields %v", got)
	}
	if v["id"] != "v1" || v["status"] != "stable" {
		t.Errorf("version %v", v)
	}
	self := v["links"].([]any)[0].(map[string]any)
	if self["rel"] != "self" || self["href"] != e.url+"/v1/" {
		t.Errorf("self link %v", self)
	}
	mt := v["media-types"].([]any)[0].(map[string]any)
	if mt["base"] != "application/json" || mt["type"] != "application/vnd.openstack.key-manager-v1+json" {
		t.Errorf("media type %v", mt)
	}
}

func TestVersionsRootMicroversionShape(t *testing.T) {
	e := newEnv(t, withAuth())
	for _, hv := range []string{"key-manager 1.1", "key-manager 1.2", "key-manager latest"} {
		r := e.must(http.StatusMultipleChoices, "GET", "/", nil, "OpenStack-API-Version", hv)
		want := map[string]string{"key-manager 1.1": "key-manager 1.1", "key-manager 1.2": "key-manager 1.2", "key-manager latest": "key-manager 1.2"}[hv]
		if got := r.Header.Get("OpenStack-API-Version"); got != want {
			t.Errorf("%s: echoed %q, want %q", hv, got, want)
		}
		list := r.JSON(t)["versions"].([]any)
		v := list[0].(map[string]any)
		if got := keys(v); !slices.Equal(got, []string{"id", "links", "max_version", "min_version", "status"}) {
			t.Errorf("%s: fields %v", hv, got)
		}
		if v["status"] != "CURRENT" || v["min_version"] != "1.0" || v["max_version"] != "1.2" {
			t.Errorf("%s: version %v", hv, v)
		}
	}
}

func TestVersionV1BothShapesWithAndWithoutSlash(t *testing.T) {
	e := newEnv(t, withAuth())
	for _, path := range []string{"/v1", "/v1/"} {
		v := e.must(http.StatusOK, "GET", path, nil).JSON(t)["version"].(map[string]any)
		if v["status"] != "stable" || v["media-types"] == nil || v["min_version"] != nil {
			t.Errorf("%s at 1.0: %v", path, v)
		}
		v = e.must(http.StatusOK, "GET", path, nil, "OpenStack-API-Version", "key-manager 1.1").JSON(t)["version"].(map[string]any)
		if v["status"] != "CURRENT" || v["media-types"] != nil || v["max_version"] != "1.2" {
			t.Errorf("%s at 1.1: %v", path, v)
		}
	}
}

func TestVersionsNeedNoAuth(t *testing.T) {
	e := newEnv(t, withAuth())
	e.must(http.StatusMultipleChoices, "GET", "/", nil, "X-Auth-Token", "garbage")
	e.must(http.StatusOK, "GET", "/v1", nil)
	checkError(t, e.do("GET", "/v1/secrets", nil), http.StatusUnauthorized)
}

func TestMicroversionUnsupportedIs406(t *testing.T) {
	e := newEnv(t)
	for _, hv := range []string{"key-manager 1.3", "key-manager 2.0", "key-manager 0.9", "key-manager -1.0"} {
		for _, path := range []string{"/", "/v1", "/v1/secrets"} {
			r := e.do("GET", path, nil, "OpenStack-API-Version", hv)
			checkError(t, r, http.StatusNotAcceptable)
		}
	}
}

func TestMicroversionMalformedIs400(t *testing.T) {
	e := newEnv(t)
	for _, hv := range []string{"key-manager 1", "key-manager x.y", "key-manager 1.1.1", "key-manager LATEST", "key-manager 1.a"} {
		for _, path := range []string{"/", "/v1/secrets"} {
			checkError(t, e.do("GET", path, nil, "OpenStack-API-Version", hv), http.StatusBadRequest)
		}
	}
}

func TestMicroversionOtherServicesIgnored(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusOK, "GET", "/v1/secrets", nil, "OpenStack-API-Version", "compute 2.1")
	if got := r.Header.Get("OpenStack-API-Version"); got != "key-manager 1.0" {
		t.Errorf("echo %q", got)
	}
	r = e.must(http.StatusOK, "GET", "/v1/secrets", nil, "OpenStack-API-Version", "compute 2.1, key-manager 1.1")
	if got := r.Header.Get("OpenStack-API-Version"); got != "key-manager 1.1" {
		t.Errorf("folded header: echo %q", got)
	}
}

func TestRequestIDHeader(t *testing.T) {
	e := newEnv(t)
	re := regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	a := e.do("GET", "/", nil).Header.Get("X-Openstack-Request-Id")
	b := e.do("GET", "/nowhere", nil).Header.Get("X-Openstack-Request-Id")
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Errorf("request ids %q %q", a, b)
	}
}

func TestHostHrefConfigured(t *testing.T) {
	e := newEnv(t, withHostHref("https://kms.example:9311/"))
	id := e.createText("x", "secret")
	r := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil)
	if got := r.JSON(t)["secret_ref"]; got != "https://kms.example:9311/v1/secrets/"+id {
		t.Errorf("secret_ref %v", got)
	}
	v := e.must(http.StatusOK, "GET", "/v1", nil).JSON(t)["version"].(map[string]any)
	if href := v["links"].([]any)[0].(map[string]any)["href"]; href != "https://kms.example:9311/v1/" {
		t.Errorf("self href %v", href)
	}
}

func TestHostHrefFromRequest(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "x"}, "X-Forwarded-Proto", "https")
	loc := r.Header.Get("Location")
	want := "https://" + e.srv.Listener.Addr().String() + "/v1/secrets/"
	if len(loc) <= len(want) || loc[:len(want)] != want {
		t.Errorf("Location %q, want prefix %q", loc, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	e := newEnv(t)
	if _, err := New(Config{}); err == nil {
		t.Error("no service accepted")
	}
	if _, err := New(Config{Service: e.svc}); err == nil {
		t.Error("no verifier and auth on accepted")
	}
	if _, err := New(Config{Service: e.svc, NoAuth: true, HostHref: "kms.example"}); err == nil {
		t.Error("host href without scheme accepted")
	}
}
