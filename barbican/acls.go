package barbican

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/keywarden/keywarden/kms"
)

// Secret ACLs: /v1/secrets/{id}/acl. Barbican's ACL documents are keyed by
// operation; only "read" exists for secrets. Who may change an ACL is kms's.

func (a *api) registerACLs(r *mux.Router) {
	a.route(r, http.MethodGet, "/v1/secrets/{id}/acl", a.getACL)
	a.route(r, http.MethodPut, "/v1/secrets/{id}/acl", a.putACL)
	a.route(r, http.MethodPatch, "/v1/secrets/{id}/acl", a.patchACL)
	a.route(r, http.MethodDelete, "/v1/secrets/{id}/acl", a.deleteACL)
}

// aclOperation is one operation's ACL. A secret that never had an ACL shows
// only {"project-access": true}; an explicit one shows every field.
type aclOperation struct {
	ProjectAccess bool      `json:"project-access"`
	Users         *[]string `json:"users,omitempty"`
	Created       string    `json:"created,omitempty"`
	Updated       string    `json:"updated,omitempty"`
}

type aclBody struct {
	Read aclOperation `json:"read"`
}

type aclRefBody struct {
	ACLRef string `json:"acl_ref"`
}

func (a *api) getACL(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	acl, err := a.svc.GetACL(r.Context(), identity(r), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	op := aclOperation{ProjectAccess: acl.ProjectAccess}
	if !acl.Created.IsZero() { // an ACL was set
		users := acl.Users
		if users == nil {
			users = []string{}
		}
		op.Users, op.Created, op.Updated = &users, formatTime(acl.Created), formatTime(acl.Updated)
	}
	writeJSON(w, http.StatusOK, aclBody{Read: op})
}

// aclChange reads {"read": {"users": [...], "project-access": bool}}; read
// is nil when absent or empty (Barbican then leaves the operation alone on
// PATCH and drops its ACL on PUT).
func aclChange(r *http.Request) (read map[string]json.RawMessage, users *[]string, access *bool, err error) {
	obj, _, err := readJSONObject(r)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := onlyKeys(obj, "read"); err != nil {
		return nil, nil, nil, err
	}
	read, _, err = jsonObject(obj, "read")
	if err != nil || len(read) == 0 {
		return nil, nil, nil, err
	}
	if err := onlyKeys(read, "users", "project-access"); err != nil {
		return nil, nil, nil, err
	}
	if raw, ok := read["users"]; ok && !isNull(raw) {
		var u []string
		if json.Unmarshal(raw, &u) != nil {
			return nil, nil, nil, kms.Invalid("'users' must be a list of user ids")
		}
		for _, id := range u {
			if len(id) > 255 {
				return nil, nil, nil, kms.Invalid("a user id is longer than 255 characters")
			}
		}
		if u == nil {
			u = []string{}
		}
		users = &u
	}
	if b, ok, err := jsonBool(read, "project-access"); err != nil {
		return nil, nil, nil, err
	} else if ok {
		access = &b
	}
	return read, users, access, nil
}

func (a *api) aclRef(r *http.Request, id string) string { return a.ref(r, "secrets", id, "acl") }

// putACL replaces the ACL: missing users are none, missing project-access
// is true; an empty document removes the ACL. 200 {"acl_ref"}.
func (a *api) putACL(w http.ResponseWriter, r *http.Request) {
	a.setACL(w, r, true)
}

// patchACL merges into the ACL: only the fields given change.
func (a *api) patchACL(w http.ResponseWriter, r *http.Request) {
	a.setACL(w, r, false)
}

func (a *api) setACL(w http.ResponseWriter, r *http.Request, replace bool) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	read, users, access, err := aclChange(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	switch {
	case read == nil && replace:
		err = a.svc.DeleteACL(r.Context(), identity(r), id)
	case replace:
		if users == nil {
			users = &[]string{}
		}
		if access == nil {
			t := true
			access = &t
		}
		_, err = a.svc.SetACL(r.Context(), identity(r), id, kms.ACLChange{Users: users, ProjectAccess: access, Replace: true})
	default:
		// An empty merge changes nothing but is still authorized by kms.
		_, err = a.svc.SetACL(r.Context(), identity(r), id, kms.ACLChange{Users: users, ProjectAccess: access})
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, aclRefBody{ACLRef: a.aclRef(r, id)})
}

// deleteACL removes the ACL (back to project access): 200, as
// gophercloud's DeleteSecretACL expects.
func (a *api) deleteACL(w http.ResponseWriter, r *http.Request) {
	id, err := secretID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.svc.DeleteACL(r.Context(), identity(r), id); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
