package barbican

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/keywarden/keywarden/kms"
)

// Secret ACLs: /v1/secrets/{id}/acl. Barbican's ACL documents are keyed by
// operation; only "read" exists. Container ACLs (container_acls.go) are the
// same document on another resource: the handlers here serve both, given
// the aclResource they work on. Who may change an ACL is kms's.

// aclResource is what an ACL belongs to: its path segment ("secrets",
// "containers"), how a request names it and the kms calls on its ACL.
type aclResource struct {
	kind string
	id   func(r *http.Request) (string, error)
	get  func(ctx context.Context, who kms.Identity, id string) (kms.ACL, error)
	set  func(ctx context.Context, who kms.Identity, id string, ch kms.ACLChange) (kms.ACL, error)
	del  func(ctx context.Context, who kms.Identity, id string) error
}

// secretACLs is the ACL resource of secrets, /v1/secrets/{id}/acl.
func (a *api) secretACLs() *aclResource {
	return &aclResource{kind: "secrets", id: secretID, get: a.svc.GetACL, set: a.svc.SetACL, del: a.svc.DeleteACL}
}

// aclOperation is one operation's ACL. A secret or a container that never
// had an ACL shows only {"project-access": true}; an explicit one shows
// every field.
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

func (a *api) getACL(res *aclResource) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := res.id(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		acl, err := res.get(r.Context(), identity(r), id)
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
			if len(id) > kms.MaxUserIDLen {
				return nil, nil, nil, kms.Invalid("a user id is longer than %d characters", kms.MaxUserIDLen)
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

// setACL answers PUT (replace: missing users are none, missing
// project-access is true; an empty document removes the ACL) and PATCH
// (merge: only the fields given change) with 200 {"acl_ref"}.
func (a *api) setACL(res *aclResource, replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := res.id(r)
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
			err = res.del(r.Context(), identity(r), id)
		case replace:
			if users == nil {
				users = &[]string{}
			}
			if access == nil {
				t := true
				access = &t
			}
			_, err = res.set(r.Context(), identity(r), id, kms.ACLChange{Users: users, ProjectAccess: access, Replace: true})
		default:
			// An empty merge changes nothing but is still authorized by kms.
			_, err = res.set(r.Context(), identity(r), id, kms.ACLChange{Users: users, ProjectAccess: access})
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, aclRefBody{ACLRef: a.ref(r, res.kind, id, "acl")})
	}
}

// deleteACL removes the ACL (back to project access): 200, as
// gophercloud's DeleteSecretACL and DeleteContainerACL expect.
func (a *api) deleteACL(res *aclResource) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := res.id(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if err := res.del(r.Context(), identity(r), id); err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}
