package barbican

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// names lists the names of a list answer's secrets, in order.
func names(t *testing.T, m map[string]any) []string {
	t.Helper()
	var out []string
	for _, s := range m["secrets"].([]any) {
		n, _ := s.(map[string]any)["name"].(string)
		out = append(out, n)
	}
	return out
}

func TestListPagingLinks(t *testing.T) {
	e := newEnv(t)
	for i := range 25 {
		e.createSecret(map[string]any{"name": fmt.Sprintf("s%02d", i)})
	}
	base := e.url + "/v1/secrets"

	m := e.must(http.StatusOK, "GET", "/v1/secrets", nil).JSON(t)
	if len(m["secrets"].([]any)) != 10 || m["total"] != 25.0 {
		t.Fatalf("first page: %d secrets, total %v", len(m["secrets"].([]any)), m["total"])
	}
	if _, ok := m["previous"]; ok {
		t.Error("previous on the first page")
	}
	if m["next"] != base+"?limit=10&offset=10" {
		t.Errorf("next %v", m["next"])
	}

	m = e.must(http.StatusOK, "GET", "/v1/secrets?offset=10&limit=10", nil).JSON(t)
	if m["previous"] != base+"?limit=10&offset=0" || m["next"] != base+"?limit=10&offset=20" {
		t.Errorf("middle page links %v / %v", m["previous"], m["next"])
	}
	if got := names(t, m); got[0] != "s10" || got[9] != "s19" {
		t.Errorf("middle page %v", got)
	}

	m = e.must(http.StatusOK, "GET", "/v1/secrets?offset=20", nil).JSON(t)
	if _, ok := m["next"]; ok || m["previous"] != base+"?limit=10&offset=10" || len(m["secrets"].([]any)) != 5 {
		t.Errorf("last page %v", m)
	}

	// previous never goes below 0.
	m = e.must(http.StatusOK, "GET", "/v1/secrets?offset=3&limit=10", nil).JSON(t)
	if m["previous"] != base+"?limit=10&offset=0" {
		t.Errorf("previous %v", m["previous"])
	}

	// Keys in Barbican's order: secrets, previous, next, total.
	raw := string(e.must(http.StatusOK, "GET", "/v1/secrets?offset=10", nil).Body)
	if !(strings.Index(raw, `"secrets"`) < strings.Index(raw, `"previous"`) &&
		strings.Index(raw, `"previous"`) < strings.Index(raw, `"next"`) &&
		strings.Index(raw, `"next"`) < strings.Index(raw, `"total"`)) {
		t.Errorf("key order: %.200s", raw)
	}
	if strings.Contains(raw, `\u0026`) {
		t.Error("& escaped in links")
	}
}

func TestListLimitAndOffsetCleaning(t *testing.T) {
	e := newEnv(t)
	for i := range 105 {
		e.createSecret(map[string]any{"name": fmt.Sprintf("s%03d", i)})
	}
	for q, want := range map[string]int{
		"":                    10,
		"?limit=0":            1,
		"?limit=-5":           1,
		"?limit=1000":         100,
		"?limit=abc":          10,
		"?limit=7&offset=abc": 7,
		"?offset=-3":          10,
		"?offset=104":         1,
	} {
		m := e.must(http.StatusOK, "GET", "/v1/secrets"+q, nil).JSON(t)
		if got := len(m["secrets"].([]any)); got != want {
			t.Errorf("%q: %d secrets, want %d", q, got, want)
		}
		if m["total"] != 105.0 {
			t.Errorf("%q: total %v", q, m["total"])
		}
	}
	m := e.must(http.StatusOK, "GET", "/v1/secrets?offset=abc", nil).JSON(t)
	if names(t, m)[0] != "s000" {
		t.Errorf("bad offset did not start at 0: %v", names(t, m)[0])
	}
	m = e.must(http.StatusOK, "GET", "/v1/secrets?limit=1000", nil).JSON(t)
	if m["next"] != e.url+"/v1/secrets?limit=100&offset=100" {
		t.Errorf("next with clamped limit: %v", m["next"])
	}
}

func TestListEmptyPageHasNoLinks(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.createSecret(map[string]any{"name": "x"})
	}
	m := e.must(http.StatusOK, "GET", "/v1/secrets?offset=50", nil).JSON(t)
	if got := keys(m); !slices.Equal(got, []string{"secrets", "total"}) || m["total"] != 3.0 {
		t.Errorf("empty page %v", m)
	}
	e2 := newEnv(t)
	if got := string(e2.must(http.StatusOK, "GET", "/v1/secrets", nil).Body); strings.TrimSpace(got) != `{"secrets":[],"total":0}` {
		t.Errorf("empty list %s", got)
	}
}

func TestListLinksKeepFilters(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.createSecret(map[string]any{"name": fmt.Sprintf("disk %d", i), "algorithm": "aes"})
	}
	e.createSecret(map[string]any{"name": "other", "algorithm": "aes"})
	m := e.must(http.StatusOK, "GET", "/v1/secrets?name=disk&limit=2&alg=aes&sort=name:asc&offset=2", nil).JSON(t)
	q := "&name=disk&alg=aes&sort=name%3Aasc"
	if m["next"] != e.url+"/v1/secrets?limit=2&offset=4"+q || m["previous"] != e.url+"/v1/secrets?limit=2&offset=0"+q {
		t.Errorf("links %v / %v", m["next"], m["previous"])
	}
	if m["total"] != 5.0 || !slices.Equal(names(t, m), []string{"disk 2", "disk 3"}) {
		t.Errorf("page %v total %v", names(t, m), m["total"])
	}
	// Following next gives the next page.
	u, _ := url.Parse(m["next"].(string))
	m = e.must(http.StatusOK, "GET", u.RequestURI(), nil).JSON(t)
	if !slices.Equal(names(t, m), []string{"disk 4"}) {
		t.Errorf("next page %v", names(t, m))
	}
}

func TestListSort(t *testing.T) {
	e := newEnv(t)
	e.createSecret(map[string]any{"name": "b", "bit_length": 128, "algorithm": "aes"})
	e.createSecret(map[string]any{"name": "a", "bit_length": 256, "algorithm": "aes"})
	e.createSecret(map[string]any{"name": "c", "bit_length": 128, "algorithm": "des"})
	for q, want := range map[string][]string{
		"":                               {"b", "a", "c"}, // created
		"?sort=name":                     {"a", "b", "c"},
		"?sort=name:desc":                {"c", "b", "a"},
		"?sort=bit_length,name:desc":     {"c", "b", "a"},
		"?sort=bit_length:desc,name":     {"a", "b", "c"},
		"?sort=algorithm:desc,name":      {"c", "a", "b"},
		"?sort=created:desc":             {"c", "a", "b"},
		"?sort=status,name":              {"a", "b", "c"},
		"?sort=updated,secret_type,mode": {"b", "a", "c"},
	} {
		m := e.must(http.StatusOK, "GET", "/v1/secrets"+q, nil).JSON(t)
		if got := names(t, m); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
	}
	for _, q := range []string{"?sort=bits", "?sort=alg", "?sort=name:up", "?sort=name,name:desc", "?sort=name:asc:x", "?sort=name,", "?sort=id"} {
		checkError(t, e.do("GET", "/v1/secrets"+q, nil), http.StatusBadRequest)
	}
}

func TestListFilters(t *testing.T) {
	e := newEnv(t)
	e.createSecret(map[string]any{"name": "Volume-Key", "algorithm": "aes", "mode": "xts", "bit_length": 512, "secret_type": "symmetric"})
	e.createSecret(map[string]any{"name": "image key", "algorithm": "aes", "mode": "cbc", "bit_length": 256, "secret_type": "symmetric"})
	e.createSecret(map[string]any{"name": "pass", "secret_type": "passphrase", "expiration": "2999-01-01T00:00:00"})
	for q, want := range map[string][]string{
		"?name=key":                           {"Volume-Key", "image key"},
		"?name=volume":                        {"Volume-Key"},
		"?name=image+key":                     {"image key"},
		"?name=image%20key":                   {"image key"},
		"?alg=aes":                            {"Volume-Key", "image key"},
		"?mode=xts":                           {"Volume-Key"},
		"?bits=256":                           {"image key"},
		"?bits=abc":                           {"Volume-Key", "image key", "pass"},
		"?secret_type=passphrase":             {"pass"},
		"?secret_type=symmetric&bits=512":     {"Volume-Key"},
		"?expiration=gt:2998-01-01T00:00:00":  {"pass"},
		"?expiration=lt:2998-01-01T00:00:00Z": {},
		"?expiration=2999-01-01T00:00:00":     {"pass"},
		"?expiration=gte:2999-01-01T00:00:00,lte:2999-01-01":     {"pass"},
		"?created=lt:2000-01-01":                                 {},
		"?created=gt:2000-01-01T00:00:00Z":                       {"Volume-Key", "image key", "pass"},
		"?updated=gte:2000-01-01T00:00:00%2B01:00,lt:2999-01-01": {"Volume-Key", "image key", "pass"},
	} {
		m := e.must(http.StatusOK, "GET", "/v1/secrets"+q, nil).JSON(t)
		got := names(t, m)
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
		if m["total"] != float64(len(want)) {
			t.Errorf("%q: total %v", q, m["total"])
		}
	}
	now := time.Now().UTC()
	created := "?created=gt:" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)) + ",lt:" + url.QueryEscape(now.Add(time.Hour).Format(time.RFC3339))
	if got := names(t, e.must(http.StatusOK, "GET", "/v1/secrets"+created, nil).JSON(t)); len(got) != 3 {
		t.Errorf("created window: %v", got)
	}
	for _, q := range []string{
		"?created=yesterday", "?created=gt:2000-01-01,gt:2001-01-01", "?created=gt:2000-01-01,gte:2001-01-01",
		"?updated=lt:2000-01-01,lte:2001-01-01", "?expiration=2000-01-01,2001-01-01", "?expiration=gte:2000-01-01,2001-01-01",
		"?created=2000-01-01,lte:2001-01-01", "?created=gt:",
	} {
		checkError(t, e.do("GET", "/v1/secrets"+q, nil), http.StatusBadRequest)
	}
}
