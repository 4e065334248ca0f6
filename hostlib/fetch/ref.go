package fetch

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/keywarden/keywarden/hostlib"
)

// Protocols a reference resolves to.
const (
	ProtoREST = "rest"
	ProtoKMIP = "kmip"
)

// Ref is a parsed secret reference.
type Ref struct {
	Proto string
	ID    string
	// Base is the REST service root a URL ref named (scheme://host[:port]
	// plus any path prefix before /v1); empty for bare ids.
	Base string
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ParseRef accepts
//
//	http(s)://host:port[/prefix]/v1/secrets/{uuid}   Barbican secret_ref
//	kmip:{unique identifier}                         KMIP object
//	{uuid} or {id}                                   resolved by the client's configuration
func ParseRef(ref string) (Ref, error) {
	switch {
	case strings.HasPrefix(ref, "kmip:"):
		id := strings.TrimPrefix(ref, "kmip:")
		if id == "" || strings.ContainsAny(id, " \t\r\n") {
			return Ref{}, fmt.Errorf("%w: %q", hostlib.ErrBadRef, ref)
		}
		return Ref{Proto: ProtoKMIP, ID: id}, nil
	case strings.HasPrefix(ref, "http://"), strings.HasPrefix(ref, "https://"):
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return Ref{}, fmt.Errorf("%w: %q", hostlib.ErrBadRef, ref)
		}
		prefix, id, ok := strings.Cut(strings.TrimSuffix(u.Path, "/"), "/v1/secrets/")
		if !ok || !uuidRe.MatchString(id) {
			return Ref{}, fmt.Errorf("%w: %q is not .../v1/secrets/{uuid}", hostlib.ErrBadRef, ref)
		}
		return Ref{Proto: ProtoREST, ID: strings.ToLower(id), Base: u.Scheme + "://" + u.Host + prefix}, nil
	case ref == "" || strings.ContainsAny(ref, "/ \t\r\n?#"):
		return Ref{}, fmt.Errorf("%w: %q", hostlib.ErrBadRef, ref)
	}
	return Ref{ID: ref}, nil
}

// sameService reports whether two REST roots are the same service, with
// default ports made explicit, so a token is never sent to another host.
func sameService(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	norm := func(u *url.URL) string {
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		return u.Scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port + strings.TrimSuffix(u.Path, "/")
	}
	return norm(ua) == norm(ub)
}
