package kms

import (
	"regexp"
	"slices"
)

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
}

// Has reports whether the identity holds role.
func (id Identity) Has(role string) bool { return slices.Contains(id.Roles, role) }

func (id Identity) hasAny(roles ...string) bool {
	for _, r := range roles {
		if id.Has(r) {
			return true
		}
	}
	return false
}

// Project ids end up inside store keys; keep them to a safe alphabet so one
// project's key prefix can never cover another's.
var projectRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,255}$`)

// Validate checks that the identity can be used at all.
func (id Identity) Validate() error {
	if !projectRE.MatchString(id.Project) {
		return Unauthenticated("the caller has no valid project")
	}
	return nil
}
