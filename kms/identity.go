package kms

import "slices"

// Roles, as Barbican's legacy policy names them.
const (
	RoleAdmin        = "admin"
	RoleCreator      = "creator"
	RoleObserver     = "observer"
	RoleAudit        = "audit"
	RoleServiceAdmin = "key-manager:service-admin"
)

// Identity is who is calling, as established by a protocol adapter (a
// verified token, a client certificate). Every Service method takes one.
type Identity struct {
	Project string
	User    string
	Roles   []string
	// Source names where the identity came from (a token issuer, a CA,
	// Keystone), so that a user name from one source never matches an ACL
	// entry made for a user of another: "jwt:<iss>", "keystone:<auth_url>",
	// "x509:<CA key id>", "noauth", "local" (the operator's CLI).
	Source string
}

// Has reports whether the identity holds role.
func (id Identity) Has(role string) bool { return slices.Contains(id.Roles, role) }

// validProject keeps project ids, which end up inside store keys, to a safe
// alphabet ([A-Za-z0-9_.:@-], 1..255) so one project's key prefix can never
// cover another's. Hand-written: it runs on every request.
func validProject(p string) bool {
	if len(p) == 0 || len(p) > 255 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == ':' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

// Validate checks that the identity can be used at all.
func (id Identity) Validate() error {
	if !validProject(id.Project) {
		return Unauthenticated("the caller has no valid project")
	}
	return nil
}
