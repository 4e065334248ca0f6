// Package policytest is the authorization matrix that the kms, REST and
// KMIP tests each run: who, of which project, may do what to an object of
// project p1 created by bob whose ACL names eve. The expectations are
// written out by hand from Barbican's policy (docs/POLICY.md), not derived
// from the code under test.
package policytest

import (
	"slices"
	"strings"

	"github.com/keywarden/keywarden/kms"
)

// Owner, the creator of every object of the matrix, and its project.
const (
	Project   = "p1"
	Owner     = "bob"
	ACLUser   = "eve" // named in the object's read ACL, of project p2
	Elsewhere = "p2"
)

// Caller is one kind of caller of the matrix.
type Caller struct {
	Name string
	kms.Identity
}

// Callers are every kind: each role of the object's project (its creator
// and another creator), another project's admin, the ACL user (and the
// same name from another identity source), a service admin and a caller
// with no known role.
var Callers = []Caller{
	{"admin", id(Project, "alice", "admin")},
	{"owner", id(Project, Owner, "creator")},
	{"creator", id(Project, "carol", "creator")},
	{"member", id(Project, "mel", "member")},
	{"observer", id(Project, "olga", "observer")},
	{"reader", id(Project, "rita", "reader")},
	{"audit", id(Project, "aude", "audit")},
	{"norole", id(Project, "nora", "service")},
	{"otheradmin", id(Elsewhere, "zed", "admin")},
	{"acluser", id(Elsewhere, ACLUser, "creator")},
	{"aclothersource", withSource(id(Elsewhere, ACLUser, "creator"), "other-issuer")},
	{"serviceadmin", id("ops", "oscar", "key-manager:service-admin")},
}

func id(project, user string, roles ...string) kms.Identity {
	return kms.Identity{Project: project, User: user, Roles: roles, Source: "test"}
}

func withSource(i kms.Identity, src string) kms.Identity { i.Source = src; return i }

// Situation is the object's read ACL: eve named, project access on
// (Public) or off (Private). Rules about no object have one situation.
type Situation int

const (
	Public Situation = iota
	Private
)

func (s Situation) String() string { return [...]string{"public", "private"}[s] }

// groups of callers, as the expectations name them
const (
	inProject   = "admin owner creator member observer reader audit" // any role of p1
	butAudit    = "admin owner creator member observer reader"
	writers     = "admin owner creator member"
	ownerAdmin  = "admin owner"
	creatorsAll = "admin owner creator member otheradmin acluser aclothersource" // may create in their own project
)

// expect maps rule → the callers allowed on a public and on a private
// object.
var expect = map[kms.Rule][2]string{
	kms.SecretCreate:  {creatorsAll, creatorsAll},
	kms.SecretList:    {butAudit + " otheradmin acluser aclothersource", butAudit + " otheradmin acluser aclothersource"},
	kms.SecretRead:    {inProject + " acluser", ownerAdmin + " acluser"},
	kms.SecretDecrypt: {butAudit + " acluser", ownerAdmin + " acluser"},
	kms.SecretUpdate:  {writers, ownerAdmin},
	kms.SecretDelete:  {writers, ownerAdmin},
	// Clone: read the payload, and create in one's own project.
	kms.SecretClone: {writers + " acluser", ownerAdmin + " acluser"},
	// Use: whoever may read the payload may have the server use it.
	kms.SecretUse:       {butAudit + " acluser", ownerAdmin + " acluser"},
	kms.SecretACLRead:   {butAudit, butAudit},
	kms.SecretACLChange: {ownerAdmin, ownerAdmin},
	kms.SecretACLDelete: {ownerAdmin, ownerAdmin},
	kms.SecretMetaRead:  {inProject + " acluser", ownerAdmin + " acluser"},
	kms.SecretMetaWrite: {writers, ownerAdmin},
	kms.ConsumerRead:    {inProject + " acluser", ownerAdmin + " acluser"},
	kms.ConsumerAdd:     {inProject + " acluser", ownerAdmin + " acluser"},
	// The consumer was registered by p1: another project may not remove it.
	kms.ConsumerRemove:  {inProject, ownerAdmin},
	kms.ConsumerDestroy: {writers, ownerAdmin},

	kms.ContainerCreate:       {creatorsAll, creatorsAll},
	kms.ContainerList:         {butAudit + " otheradmin acluser aclothersource", butAudit + " otheradmin acluser aclothersource"},
	kms.ContainerRead:         {inProject + " acluser", ownerAdmin + " acluser"},
	kms.ContainerDelete:       {ownerAdmin, ownerAdmin},
	kms.ContainerSecretChange: {writers, ownerAdmin},
	kms.ContainerConsumerRead: {inProject + " acluser", ownerAdmin + " acluser"},
	kms.ContainerConsumerUse:  {inProject + " acluser", ownerAdmin + " acluser"},
	kms.ContainerACLRead:      {butAudit, butAudit},
	kms.ContainerACLChange:    {ownerAdmin, ownerAdmin},

	kms.OrderCreate: {creatorsAll, creatorsAll},
	kms.OrderList:   {butAudit + " otheradmin acluser aclothersource", butAudit + " otheradmin acluser aclothersource"},
	kms.OrderRead:   {butAudit, butAudit},
	kms.OrderDelete: {ownerAdmin, ownerAdmin},

	kms.QuotaRead:         {inProject + " otheradmin acluser aclothersource serviceadmin", inProject + " otheradmin acluser aclothersource serviceadmin"},
	kms.ProjectQuotaAdmin: {"serviceadmin", "serviceadmin"},
	kms.OrphanList:        {"serviceadmin", "serviceadmin"},
	kms.OrphanDestroy:     {"serviceadmin", "serviceadmin"},
}

// KMIPOnly are the rules no REST route asks (the REST matrix skips them).
var KMIPOnly = []kms.Rule{kms.SecretUse}

// Rules are every rule the matrix covers, in a stable order.
func Rules() []kms.Rule {
	out := make([]kms.Rule, 0, len(expect))
	for r := range expect {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Allowed reports whether the matrix says caller may do rule in situation.
func Allowed(rule kms.Rule, s Situation, caller string) bool {
	e, ok := expect[rule]
	if !ok {
		panic("policytest: no expectation for " + string(rule))
	}
	return slices.Contains(strings.Fields(e[s]), caller)
}
