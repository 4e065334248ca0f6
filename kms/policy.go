package kms

import (
	"fmt"
	"slices"
	"strings"
)

// The authorization policy: one table, checked here once for every protocol.
// Its defaults are Barbican's legacy rules (roles admin, creator, observer,
// audit, scoped to the caller's project; ACLs open one object to named users
// or close it to its project), with Barbican's secure-RBAC names member and
// reader read as creator and observer. Keywarden's own rules (consumers that
// destroy, clone, orphans) are rows of the same table. An operator overrides
// any row by name (Config.Policy); docs/POLICY.md is generated from it.

// Rule names one decision, with Barbican's policy names where Barbican has
// the action.
type Rule string

const (
	// Secrets.
	SecretCreate  Rule = "secrets:post"
	SecretList    Rule = "secrets:get"
	SecretRead    Rule = "secret:get"
	SecretDecrypt Rule = "secret:decrypt"
	SecretUpdate  Rule = "secret:put"
	SecretDelete  Rule = "secret:delete"
	SecretClone   Rule = "secret:clone"
	SecretUse     Rule = "secret:use"
	// ACLs of secrets and containers.
	SecretACLRead   Rule = "secret_acls:get"
	SecretACLChange Rule = "secret_acls:put_patch"
	SecretACLDelete Rule = "secret_acls:delete"
	// Metadata.
	SecretMetaRead  Rule = "secret_meta:get"
	SecretMetaWrite Rule = "secret_meta:post"
	// Consumers.
	ConsumerRead    Rule = "secret_consumers:get"
	ConsumerAdd     Rule = "secret_consumers:post"
	ConsumerRemove  Rule = "secret_consumers:delete"
	ConsumerDestroy Rule = "secret_consumers:destroy"
	// Containers.
	ContainerCreate       Rule = "containers:post"
	ContainerList         Rule = "containers:get"
	ContainerRead         Rule = "container:get"
	ContainerDelete       Rule = "container:delete"
	ContainerSecretChange Rule = "container_secret:post"
	ContainerConsumerRead Rule = "container_consumers:get"
	ContainerConsumerUse  Rule = "container_consumers:post"
	ContainerACLRead      Rule = "container_acls:get"
	ContainerACLChange    Rule = "container_acls:put_patch"
	// Orders.
	OrderCreate Rule = "orders:post"
	OrderList   Rule = "orders:get"
	OrderRead   Rule = "order:get"
	OrderDelete Rule = "order:delete"
	// Quotas.
	QuotaRead         Rule = "quotas:get"
	ProjectQuotaAdmin Rule = "project_quotas:put"
	// Orphans (all projects).
	OrphanList    Rule = "orphans:get"
	OrphanDestroy Rule = "orphans:delete"
)

// ruleDef is one row of the table.
type ruleDef struct {
	name  Rule
	check string // the default, in the policy language (policy_expr.go)
	does  string // what it allows: "read the payload of a secret"
	where string // the REST routes and KMIP operations that ask it
}

// baseRules are named building blocks (rule:NAME), as in Barbican's
// policy.yaml; they decide nothing on their own.
var baseRules = []ruleDef{
	{name: "admin", check: "role:admin"},
	{name: "writer", check: "role:creator or role:member"},
	{name: "reader", check: "role:observer or role:reader"},
	{name: "audit", check: "role:audit"},
	{name: "service_admin", check: "role:key-manager:service-admin"},
	{name: "all_users", check: "rule:admin or rule:writer or rule:reader or rule:audit"},
	{name: "all_but_audit", check: "rule:admin or rule:writer or rule:reader"},
	{name: "admin_or_writer", check: "rule:admin or rule:writer"},
	{name: "project_admin", check: "project_match and rule:admin"},
	{name: "project_owner", check: "owner and rule:writer"},
	{name: "non_private", check: "project_match and not private"},
	{name: "object_read", check: "rule:project_admin or rule:project_owner or acl_user or (rule:non_private and rule:all_users)"},
	{name: "object_decrypt", check: "rule:project_admin or rule:project_owner or acl_user or (rule:non_private and rule:all_but_audit)"},
	{name: "object_write", check: "rule:project_admin or rule:project_owner or (rule:non_private and rule:writer)"},
	{name: "object_owner", check: "rule:project_admin or rule:project_owner"},
}

// rules is the table itself, in the order docs/POLICY.md shows it.
var rules = []ruleDef{
	{SecretCreate, "rule:admin_or_writer", "create a secret in one's own project",
		"POST /v1/secrets, POST /v1/orders (type key, passphrase); KMIP Create, Create Key Pair, Register, Re-key, Re-key Key Pair"},
	{SecretList, "rule:all_but_audit", "list the secrets of one's project (each listed only if secret:get allows it)",
		"GET /v1/secrets; KMIP Locate"},
	{SecretRead, "rule:object_read", "read a secret's metadata",
		"GET /v1/secrets/{id}, GET .../lifecycle; KMIP Get Attributes, Get Attribute List, Check, Locate"},
	{SecretDecrypt, "rule:object_decrypt", "read the payload of a secret",
		"GET /v1/secrets/{id}/payload; KMIP Get"},
	{SecretUpdate, "rule:object_write", "change a secret: upload its payload, its lifecycle state, its attributes",
		"PUT /v1/secrets/{id}; KMIP Activate, Revoke, Add/Modify/Delete/Set Attribute, Re-key, Re-key Key Pair (the old key)"},
	{SecretDelete, "rule:object_write", "delete or destroy a secret (force with consumers: also rule:project_admin)",
		"DELETE /v1/secrets/{id}; KMIP Destroy"},
	{SecretClone, "rule:object_decrypt", "clone a secret (the clone lands in the caller's project and needs secrets:post there)",
		"POST /v1/secrets/{id}/clone"},
	{SecretUse, "rule:object_decrypt", "use a key in a cryptographic operation on the server (the material stays there)",
		"KMIP Encrypt, Decrypt, Sign, Signature Verify, MAC, MAC Verify"},
	{SecretACLRead, "project_match and rule:all_but_audit", "read a secret's ACL",
		"GET /v1/secrets/{id}/acl"},
	{SecretACLChange, "rule:object_owner", "change a secret's ACL",
		"PUT/PATCH /v1/secrets/{id}/acl"},
	{SecretACLDelete, "rule:object_owner", "remove a secret's ACL",
		"DELETE /v1/secrets/{id}/acl"},
	{SecretMetaRead, "rule:object_read", "read a secret's user metadata",
		"GET /v1/secrets/{id}/metadata[/{key}]"},
	{SecretMetaWrite, "rule:object_write", "write a secret's user metadata (which can set its deletion policy)",
		"PUT/POST /v1/secrets/{id}/metadata, PUT/DELETE .../metadata/{key}"},
	{ConsumerRead, "rule:object_read", "list a secret's consumers",
		"GET /v1/secrets/{id}/consumers"},
	{ConsumerAdd, "rule:object_read", "register a consumer of a secret",
		"POST /v1/secrets/{id}/consumers, orders and clones with a consumer"},
	{ConsumerRemove, "rule:object_read", "remove a consumer of a secret (registered by one's own project, or of a secret of one's project)",
		"DELETE /v1/secrets/{id}/consumers"},
	{ConsumerDestroy, "rule:object_write", "remove the last consumer of an on_last_consumer secret, which destroys it",
		"DELETE /v1/secrets/{id}/consumers"},
	{ContainerCreate, "rule:admin_or_writer", "create a container in one's own project",
		"POST /v1/containers"},
	{ContainerList, "rule:all_but_audit", "list the containers of one's project",
		"GET /v1/containers"},
	{ContainerRead, "rule:object_read", "read a container",
		"GET /v1/containers/{id}"},
	{ContainerDelete, "rule:object_owner", "delete a container",
		"DELETE /v1/containers/{id}"},
	{ContainerSecretChange, "rule:object_write", "add or remove a secret of a generic container",
		"POST/DELETE /v1/containers/{id}/secrets"},
	{ContainerConsumerRead, "rule:object_read", "list a container's consumers",
		"GET /v1/containers/{id}/consumers"},
	{ContainerConsumerUse, "rule:object_read", "register or remove a consumer of a container",
		"POST/DELETE /v1/containers/{id}/consumers"},
	{ContainerACLRead, "project_match and rule:all_but_audit", "read a container's ACL",
		"GET /v1/containers/{id}/acl"},
	{ContainerACLChange, "rule:object_owner", "change or remove a container's ACL",
		"PUT/PATCH/DELETE /v1/containers/{id}/acl"},
	{OrderCreate, "rule:admin_or_writer", "order a key, a passphrase or an RSA key pair (its secrets and rsa container) in one's own project",
		"POST /v1/orders"},
	{OrderList, "rule:all_but_audit", "list the orders of one's project",
		"GET /v1/orders"},
	{OrderRead, "project_match and rule:all_but_audit", "read an order",
		"GET /v1/orders/{id}"},
	{OrderDelete, "rule:project_admin or rule:project_owner", "delete an order (never its secret)",
		"DELETE /v1/orders/{id}"},
	{QuotaRead, "rule:all_users or rule:service_admin", "read one's project's effective quotas",
		"GET /v1/quotas"},
	{ProjectQuotaAdmin, "rule:service_admin", "read, set or remove any project's quotas",
		"GET/PUT/DELETE /v1/project-quotas[/{project}]"},
	{OrphanList, "rule:service_admin", "list orphans in every project (secrets whose deletion policy says go and that have no consumer)",
		"GET /v1/orphans; keywarden secret orphans"},
	{OrphanDestroy, "rule:service_admin", "destroy orphans in every project (retain secrets never are)",
		"DELETE /v1/orphans; keywarden secret orphans --delete"},
}

// Policy is the compiled table.
type Policy struct {
	rules map[Rule]expr
	text  map[Rule]string // the effective text of every row, base rules too
}

// NewPolicy compiles the defaults with overrides (rule name → text) over
// them; an unknown name or a text that does not parse is an error.
func NewPolicy(overrides map[string]string) (*Policy, error) {
	text := map[Rule]string{}
	for _, d := range slices.Concat(baseRules, rules) {
		text[d.name] = d.check
	}
	for name, t := range overrides {
		if _, ok := text[Rule(name)]; !ok {
			return nil, fmt.Errorf("policy: unknown rule %q", name)
		}
		text[Rule(name)] = t
	}
	p := &Policy{rules: map[Rule]expr{}, text: text}
	compiling := map[Rule]bool{}
	var compile func(name Rule) (expr, error)
	compile = func(name Rule) (expr, error) {
		if x, ok := p.rules[name]; ok {
			return x, nil
		}
		t, ok := text[name]
		if !ok {
			return nil, fmt.Errorf("rule:%s is not defined", name)
		}
		if compiling[name] {
			return nil, fmt.Errorf("rule:%s refers to itself", name)
		}
		compiling[name] = true
		x, err := compileRule(t, func(n string) (expr, error) { return compile(Rule(n)) })
		if err != nil {
			return nil, fmt.Errorf("policy: %s: %w", name, err)
		}
		p.rules[name] = x
		return x, nil
	}
	for name := range text {
		if _, err := compile(name); err != nil {
			return nil, err
		}
	}
	return p, nil
}

var defaultPolicy = func() *Policy {
	p, err := NewPolicy(nil)
	if err != nil {
		panic(err)
	}
	return p
}()

// allows reports whether rule admits who on t (nil: no object).
func (p *Policy) allows(rule Rule, who *Identity, t *target) bool {
	x, ok := p.rules[rule]
	return ok && x.eval(who, t)
}

// check is allows as an error: a refusal names the action and the object.
// The object is named as kind and id, joined only on a refusal: most
// checks pass, and they run on every request.
func (p *Policy) check(rule Rule, who Identity, t *target, kind, id string) error {
	if p.allows(rule, &who, t) {
		return nil
	}
	object := ""
	if kind != "" {
		object = kind + " " + id
	}
	does := string(rule)
	if d := ruleByName(rule); d != nil {
		does = d.does
	}
	if object != "" {
		return Forbidden("policy %s does not allow the caller to %s (%s)", rule, does, object)
	}
	return Forbidden("policy %s does not allow the caller to %s", rule, does)
}

func ruleByName(name Rule) *ruleDef {
	for i := range rules {
		if rules[i].name == name {
			return &rules[i]
		}
	}
	return nil
}

// secretTarget, containerTarget: what the rules see of an object.
func secretTarget(s *Secret) *target {
	return &target{project: s.Project, creator: s.Creator, creatorSource: s.CreatorSource, acl: s.ACL}
}

func (o *Order) target() *target {
	return &target{project: o.Project, creator: o.Creator, creatorSource: o.CreatorSource}
}

func containerTarget(c *Container) *target {
	return &target{project: c.Project, creator: c.Creator, creatorSource: c.CreatorSource, acl: c.ACL}
}

// allow checks rule for who on a secret.
func (s *Service) allowSecret(rule Rule, who Identity, sec *Secret) error {
	return s.policy.check(rule, who, secretTarget(sec), "secret", sec.ID)
}

// allowContainer checks rule for who on a container.
func (s *Service) allowContainer(rule Rule, who Identity, c *Container) error {
	return s.policy.check(rule, who, containerTarget(c), "container", c.ID)
}

// allowProject checks a rule about no object (create, list, quotas).
func (s *Service) allowProject(rule Rule, who Identity) error {
	return s.policy.check(rule, who, nil, "", "")
}

// Allows tells an adapter, before it reads a request, whether who passes a
// rule about no object (project quotas, orphans).
func (s *Service) Allows(rule Rule, who Identity) error {
	if err := who.Validate(); err != nil {
		return err
	}
	return s.allowProject(rule, who)
}

// PolicyDoc is docs/POLICY.md: the table as this policy has it.
func (p *Policy) PolicyDoc() string {
	var b strings.Builder
	b.WriteString(policyDocHead)
	b.WriteString("\n## Rules\n\n| rule | allows the caller to | default | asked by |\n|---|---|---|---|\n")
	for _, d := range rules {
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", d.name, d.does, p.text[d.name], d.where)
	}
	b.WriteString("\n## Building blocks\n\nRows name these with `rule:NAME`; they can be overridden like any row.\n\n| name | default |\n|---|---|\n")
	for _, d := range baseRules {
		fmt.Fprintf(&b, "| `%s` | `%s` |\n", d.name, p.text[d.name])
	}
	b.WriteString(policyDocTail)
	return b.String()
}

// DefaultPolicyDoc is PolicyDoc of the defaults.
func DefaultPolicyDoc() string { return defaultPolicy.PolicyDoc() }
