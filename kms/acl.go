package kms

import (
	"context"
	"slices"
	"time"
)

// Read ACLs, Barbican's "read" operation: a secret's (below) or a
// container's (container_acl.go). The document and its changes are the
// same for both; what an ACL grants is in the rules of each (policy.go,
// containers.go).

// GetACL returns the secret's read ACL; a secret without one has project
// access and no users.
func (s *Service) GetACL(ctx context.Context, who Identity, id string) (ACL, error) {
	if err := who.Validate(); err != nil {
		return ACL{}, err
	}
	l, err := s.read(ctx, id, View{})
	if err != nil {
		return ACL{}, err
	}
	if err := s.allowSecret(SecretACLRead, who, l.rec.Secret); err != nil {
		return ACL{}, err
	}
	return l.rec.ACL.view(), nil
}

// view is the ACL as a GET shows it, a copy: none is project access and
// no users.
func (a *ACL) view() ACL {
	if a == nil {
		return ACL{ProjectAccess: true}
	}
	out := *a
	out.Users = slices.Clone(a.Users)
	return out
}

// closed reports whether the ACL hides its object from the project.
func (a *ACL) closed() bool { return a != nil && !a.ProjectAccess }

// lists reports whether the ACL names who, a user of the source it was
// made for.
func (a *ACL) lists(who *Identity) bool {
	return a != nil && who.User != "" && a.Source == who.Source && slices.Contains(a.Users, who.User)
}

// ACLChange is a PUT (replace) or PATCH (merge) of the read ACL: nil fields
// are left as they are on a merge and reset on a replace.
type ACLChange struct {
	Users         *[]string
	ProjectAccess *bool
	Replace       bool
}

// apply returns the ACL that the change by who makes of cur (nil: none
// yet) at now. Users are named in who's identity source.
func (ch ACLChange) apply(who Identity, cur *ACL, now time.Time) *ACL {
	acl := ACL{ProjectAccess: true, Created: now}
	if cur != nil && !ch.Replace {
		acl = *cur
	} else if cur != nil {
		acl.Created = cur.Created
	}
	if ch.Users != nil {
		users := slices.Clone(*ch.Users)
		slices.Sort(users)
		acl.Users = slices.Compact(users)
		acl.Source = who.Source
	}
	if ch.ProjectAccess != nil {
		acl.ProjectAccess = *ch.ProjectAccess
	}
	acl.Updated = now
	return &acl
}

// SetACL changes the read ACL (creator-owner or admin).
func (s *Service) SetACL(ctx context.Context, who Identity, id string, ch ACLChange) (_ ACL, err error) {
	ctx = s.begin(ctx, who, "acl_set")
	defer func() { s.record(ctx, who, "acl_set", id, err) }()
	sec, err := s.update(ctx, id, View{}, func(r *record) error {
		if err := s.allowSecret(SecretACLChange, who, r.Secret); err != nil {
			return err
		}
		r.ACL = ch.apply(who, r.ACL, s.clock())
		return nil
	})
	if err != nil {
		return ACL{}, err
	}
	return *sec.ACL, nil
}

// DeleteACL removes the ACL: back to project access, no users.
func (s *Service) DeleteACL(ctx context.Context, who Identity, id string) (err error) {
	ctx = s.begin(ctx, who, "acl_delete")
	defer func() { s.record(ctx, who, "acl_delete", id, err) }()
	_, err = s.update(ctx, id, View{}, func(r *record) error {
		if err := s.allowSecret(SecretACLDelete, who, r.Secret); err != nil {
			return err
		}
		r.ACL = nil
		return nil
	})
	return err
}
