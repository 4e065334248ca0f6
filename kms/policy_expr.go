package kms

import (
	"fmt"
	"strings"
)

// The policy language: a small subset of oslo.policy, so that an operator
// who has written Barbican's policy.yaml can read and override ours.
//
//	check := role:NAME | rule:NAME | project_match | owner | private | acl_user | true | false
//	expr  := check | not expr | expr and expr | expr or expr | ( expr )
//
// "and" binds tighter than "or", as in oslo.policy. The checks about an
// object (project_match, owner, private, acl_user) are false when the rule
// is checked without one (creating, listing).

// target is the object a rule is checked against: its project, creator and
// read ACL. nil for rules about no object.
type target struct {
	project string
	creator string
	// creatorSource is the creator's identity source; empty on objects
	// made before sources were recorded, which match by name alone.
	creatorSource string
	acl           *ACL
}

type expr interface {
	eval(who *Identity, t *target) bool
}

type (
	roleCheck string
	boolCheck bool
	notExpr   struct{ x expr }
	andExpr   []expr
	orExpr    []expr
	objCheck  int
)

const (
	chkProjectMatch objCheck = iota
	chkOwner
	chkPrivate
	chkACLUser
)

var objChecks = map[string]objCheck{
	"project_match": chkProjectMatch, "owner": chkOwner, "private": chkPrivate, "acl_user": chkACLUser,
}

func (r roleCheck) eval(who *Identity, _ *target) bool { return who.Has(string(r)) }
func (b boolCheck) eval(*Identity, *target) bool       { return bool(b) }
func (n notExpr) eval(who *Identity, t *target) bool   { return !n.x.eval(who, t) }

func (a andExpr) eval(who *Identity, t *target) bool {
	for _, x := range a {
		if !x.eval(who, t) {
			return false
		}
	}
	return true
}

func (o orExpr) eval(who *Identity, t *target) bool {
	for _, x := range o {
		if x.eval(who, t) {
			return true
		}
	}
	return false
}

func (c objCheck) eval(who *Identity, t *target) bool {
	if t == nil {
		return false
	}
	switch c {
	case chkProjectMatch:
		return who.Project == t.project
	case chkOwner:
		return who.Project == t.project && t.creator != "" && who.User == t.creator &&
			(t.creatorSource == "" || t.creatorSource == who.Source)
	case chkPrivate:
		return t.acl.closed()
	case chkACLUser:
		return t.acl.lists(who)
	}
	return false
}

// parser turns one rule's text into an expr; rule:NAME is resolved through
// lookup, which compiles the named rule (and catches cycles).
type parser struct {
	toks   []string
	pos    int
	lookup func(name string) (expr, error)
}

func tokenize(s string) []string {
	s = strings.NewReplacer("(", " ( ", ")", " ) ").Replace(s)
	return strings.Fields(s)
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) next() string { t := p.peek(); p.pos++; return t }

func (p *parser) parseOr() (expr, error) {
	var terms orExpr
	for {
		x, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		terms = append(terms, x)
		if p.peek() != "or" {
			break
		}
		p.next()
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) parseAnd() (expr, error) {
	var terms andExpr
	for {
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		terms = append(terms, x)
		if p.peek() != "and" {
			break
		}
		p.next()
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) parseNot() (expr, error) {
	if p.peek() == "not" {
		p.next()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return notExpr{x}, nil
	}
	return p.parseAtom()
}

func (p *parser) parseAtom() (expr, error) {
	tok := p.next()
	switch {
	case tok == "":
		return nil, fmt.Errorf("unexpected end of rule")
	case tok == "(":
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return x, nil
	case tok == "true" || tok == "@":
		return boolCheck(true), nil
	case tok == "false" || tok == "!":
		return boolCheck(false), nil
	case strings.HasPrefix(tok, "role:") && len(tok) > len("role:"):
		return roleCheck(strings.ToLower(tok[len("role:"):])), nil
	case strings.HasPrefix(tok, "rule:"):
		return p.lookup(tok[len("rule:"):])
	}
	if c, ok := objChecks[tok]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("unknown check %q", tok)
}

// compileRule parses text completely.
func compileRule(text string, lookup func(string) (expr, error)) (expr, error) {
	p := &parser{toks: tokenize(text), lookup: lookup}
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.peek())
	}
	return x, nil
}
