package barbican

// Container ACLs: /v1/containers/{id}/acl, the document and the handlers
// of secret ACLs (acls.go) on a container.

// containerACLs is the ACL resource of containers, /v1/containers/{id}/acl.
func (a *api) containerACLs() *aclResource {
	return &aclResource{kind: "containers", id: containerID,
		get: a.svc.GetContainerACL, set: a.svc.SetContainerACL, del: a.svc.DeleteContainerACL}
}
