package barbican

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keywarden/keywarden/kms"
)

// Refs are absolute URLs, {host_href}/v1/{resource}/{id}: Barbican's
// HATEOAS style, which every client parses the id back out of.

// baseURL is the configured host href, or the one the request was made to
// (Host header; scheme from X-Forwarded-Proto behind a proxy), without a
// trailing slash.
func (a *api) baseURL(r *http.Request) string {
	if a.hostHref != "" {
		return a.hostHref
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	switch p := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))); p {
	case "http", "https":
		scheme = p
	}
	return scheme + "://" + r.Host
}

// ref is the absolute ref of a v1 resource: ref(r, "secrets", id) is
// "{base}/v1/secrets/{id}".
func (a *api) ref(r *http.Request, parts ...string) string {
	return a.baseURL(r) + "/v1/" + strings.Join(parts, "/")
}

// secretRef is the ref of one secret.
func (a *api) secretRef(r *http.Request, id string) string { return a.ref(r, "secrets", id) }

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// pathUUID is the route variable name as a lowercase UUID; anything else is
// 404 before kms is asked, as Barbican does ("Provided secret id is
// invalid"). what names the resource in the message.
func pathUUID(r *http.Request, name, what string) (string, error) {
	id := mux.Vars(r)[name]
	if !uuidRE.MatchString(id) {
		return "", kms.NotFound("Not Found. Provided %s id is invalid.", what)
	}
	return strings.ToLower(id), nil
}
