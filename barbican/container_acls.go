package barbican

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Container ACLs: /v1/containers/{id}/acl, the document and the handlers
// of secret ACLs (acls.go) on a container. Registered by
// registerContainers, on the authenticated subrouter.

func (a *api) registerContainerACLs(r *mux.Router) {
	res := &aclResource{kind: "containers", id: containerID,
		get: a.svc.GetContainerACL, set: a.svc.SetContainerACL, del: a.svc.DeleteContainerACL}
	r.HandleFunc("/v1/containers/{id}/acl", a.getACL(res)).Methods(http.MethodGet)
	r.HandleFunc("/v1/containers/{id}/acl", a.setACL(res, true)).Methods(http.MethodPut)
	r.HandleFunc("/v1/containers/{id}/acl", a.setACL(res, false)).Methods(http.MethodPatch)
	r.HandleFunc("/v1/containers/{id}/acl", a.deleteACL(res)).Methods(http.MethodDelete)
}
