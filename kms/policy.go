package kms

// The authorization rules, checked here once for every protocol. They follow
// Barbican's legacy policy: roles are scoped to the caller's project; an ACL
// can open one secret to named users or close it to the project.

// Action names what a caller wants to do with a secret.
type Action int

const (
	ActRead    Action = iota // metadata
	ActDecrypt               // payload
	ActUpdate                // payload upload, attributes, lifecycle state, metadata writes
	ActDelete
	ActACL // change the ACL
)

var actionNames = map[Action]string{
	ActRead: "read", ActDecrypt: "read the payload of", ActUpdate: "change",
	ActDelete: "delete", ActACL: "change the ACL of",
}

// canCreate: admin or creator in their own project.
func canCreate(who Identity) error {
	if who.hasAny(RoleAdmin, RoleCreator) {
		return nil
	}
	return Forbidden("role admin or creator is required to create secrets")
}

// canList: admin, observer or creator.
func canList(who Identity) error {
	if who.hasAny(RoleAdmin, RoleObserver, RoleCreator) {
		return nil
	}
	return Forbidden("role admin, observer or creator is required to list secrets")
}

// authorize applies the per-secret rules.
func authorize(who Identity, s *Secret, act Action) error {
	sameProject := who.Project == s.Project
	owner := sameProject && s.Creator != "" && who.User == s.Creator
	admin := sameProject && who.Has(RoleAdmin)
	creatorOwner := owner && who.Has(RoleCreator)
	ok := false
	switch act {
	case ActRead:
		ok = admin || creatorOwner || s.aclUser(who.User) ||
			(sameProject && !s.private() && who.hasAny(RoleAdmin, RoleObserver, RoleCreator, RoleAudit))
	case ActDecrypt:
		ok = admin || creatorOwner || s.aclUser(who.User) ||
			(sameProject && !s.private() && who.hasAny(RoleAdmin, RoleObserver, RoleCreator))
	case ActUpdate:
		ok = admin || creatorOwner || (sameProject && !s.private() && who.Has(RoleCreator))
	case ActDelete:
		ok = admin || creatorOwner || (sameProject && !s.private() && who.Has(RoleCreator))
	case ActACL:
		ok = admin || creatorOwner
	}
	if ok {
		return nil
	}
	return Forbidden("not allowed to %s secret %s", actionNames[act], s.ID)
}
