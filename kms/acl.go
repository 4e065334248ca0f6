package kms

import (
	"context"
	"slices"
)

// GetACL returns the secret's read ACL; a secret without one has project
// access and no users.
func (s *Service) GetACL(ctx context.Context, who Identity, id string) (ACL, error) {
	sec, err := s.GetSecret(ctx, who, id)
	if err != nil {
		return ACL{}, err
	}
	if sec.ACL == nil {
		return ACL{ProjectAccess: true}, nil
	}
	return *sec.Clone().ACL, nil
}

// ACLChange is a PUT (replace) or PATCH (merge) of the read ACL: nil fields
// are left as they are on a merge and reset on a replace.
type ACLChange struct {
	Users         *[]string
	ProjectAccess *bool
	Replace       bool
}

// SetACL changes the read ACL (creator-owner or admin).
func (s *Service) SetACL(ctx context.Context, who Identity, id string, ch ACLChange) (ACL, error) {
	sec, err := s.update(ctx, id, false, func(r *record) error {
		if err := authorize(who, r.Secret, ActACL); err != nil {
			return err
		}
		now := s.clock()
		acl := ACL{ProjectAccess: true, Created: now}
		if r.ACL != nil && !ch.Replace {
			acl = *r.ACL
		} else if r.ACL != nil {
			acl.Created = r.ACL.Created
		}
		if ch.Users != nil {
			users := slices.Clone(*ch.Users)
			slices.Sort(users)
			acl.Users = slices.Compact(users)
		}
		if ch.ProjectAccess != nil {
			acl.ProjectAccess = *ch.ProjectAccess
		}
		acl.Updated = now
		r.ACL = &acl
		return nil
	})
	if err != nil {
		return ACL{}, err
	}
	return *sec.ACL, nil
}

// DeleteACL removes the ACL: back to project access, no users.
func (s *Service) DeleteACL(ctx context.Context, who Identity, id string) error {
	_, err := s.update(ctx, id, false, func(r *record) error {
		if err := authorize(who, r.Secret, ActACL); err != nil {
			return err
		}
		r.ACL = nil
		return nil
	})
	return err
}
