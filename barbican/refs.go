package barbican

import (
	"net/http"
	"strings"

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
	return a.scheme(r) + "://" + r.Host
}

// scheme is the scheme of the request's own base URL.
func (a *api) scheme(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if v := r.Header["X-Forwarded-Proto"]; len(v) > 0 {
		switch p := strings.ToLower(strings.TrimSpace(v[0])); p {
		case "http", "https":
			scheme = p
		}
	}
	return scheme
}

// ref is the absolute ref of a v1 resource: ref(r, "secrets", id) is
// "{base}/v1/secrets/{id}". It is built in one allocation: every create
// answers one.
func (a *api) ref(r *http.Request, parts ...string) string {
	var b strings.Builder
	var scheme string
	n := len(a.hostHref) + len("/v1/")
	if a.hostHref == "" {
		scheme = a.scheme(r)
		n += len(scheme) + len("://") + len(r.Host)
	}
	for _, p := range parts {
		n += 1 + len(p)
	}
	b.Grow(n)
	if a.hostHref != "" {
		b.WriteString(a.hostHref)
	} else {
		b.WriteString(scheme)
		b.WriteString("://")
		b.WriteString(r.Host)
	}
	b.WriteString("/v1/")
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p)
	}
	return b.String()
}

// secretRef is the ref of one secret.
func (a *api) secretRef(r *http.Request, id string) string { return a.ref(r, "secrets", id) }

// isUUID reports whether s is a UUID in its 8-4-4-4-12 hex form, either
// case (the regexp ^[0-9a-fA-F]{8}-...-[0-9a-fA-F]{12}$, by hand: this runs
// on every request that names a resource).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// pathUUID is the route variable name as a lowercase UUID; anything else is
// 404 before kms is asked, as Barbican does ("Provided secret id is
// invalid"). what names the resource in the message.
func pathUUID(r *http.Request, name, what string) (string, error) {
	id := routeVar(r, name)
	if !isUUID(id) {
		return "", kms.NotFound("Not Found. Provided %s id is invalid.", what)
	}
	return strings.ToLower(id), nil
}
