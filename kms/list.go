package kms

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/keywarden/keywarden/crypto"
)

// TimeFilter compares a timestamp: Op is one of gt, gte, lt, lte.
type TimeFilter struct {
	Op string
	T  time.Time
}

func (f TimeFilter) match(t *time.Time) bool {
	if t == nil {
		return false
	}
	switch f.Op {
	case "gt":
		return t.After(f.T)
	case "gte":
		return !t.Before(f.T)
	case "lt":
		return t.Before(f.T)
	case "lte":
		return !t.After(f.T)
	}
	return t.Equal(f.T)
}

// SortKey orders a listing by one field.
type SortKey struct {
	Field string // created, updated, expiration, name, algorithm, bit_length, mode, secret_type
	Desc  bool
}

// SortFields are the fields a listing can be sorted by.
var SortFields = []string{"created", "updated", "expiration", "name", "algorithm", "bit_length", "mode", "secret_type"}

// ListQuery filters a project's secrets. Zero fields do not filter.
type ListQuery struct {
	Name, Algorithm, Mode string // substring, case-insensitive
	ExactName             string // KMIP Locate by Name
	BitLength             int
	Type                  SecretType
	State                 State
	Created, Updated      []TimeFilter
	Expiration            []TimeFilter
	Attributes            map[string]string // all must match
	Sort                  []SortKey         // default created ascending
	Offset, Limit         int               // Limit <= 0: all
	View                  View              // which secrets are listed (view.go)
	// ACLOnly lists, in any project, the secrets whose read ACL names the
	// caller (Barbican's acl_only=true) instead of the caller's project.
	ACLOnly bool
}

// ListSecrets returns the caller's project's secrets that match q and that
// the caller may read, one page of them, and the total number matching.
func (s *Service) ListSecrets(ctx context.Context, who Identity, q ListQuery) ([]*Secret, int, error) {
	if err := who.Validate(); err != nil {
		return nil, 0, err
	}
	if err := s.allowProject(SecretList, who); err != nil {
		return nil, 0, err
	}
	for _, k := range q.Sort {
		if !slices.Contains(SortFields, k.Field) {
			return nil, 0, Invalid("cannot sort by %q", k.Field)
		}
	}
	candidates, err := s.listCandidates(ctx, who, q.ACLOnly)
	if err != nil {
		return nil, 0, err
	}
	now := s.now()
	var out []*Secret
	for _, sec := range candidates {
		if !q.View.shows(sec, now) {
			continue
		}
		if !q.match(sec) || s.allowSecret(SecretRead, who, sec) != nil {
			continue
		}
		out = append(out, sec)
	}
	sortSecrets(out, q.Sort)
	total := len(out)
	if q.Offset > 0 {
		out = out[min(q.Offset, len(out)):]
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, total, nil
}

// listCandidates reads the secrets a listing looks at: the caller's project,
// or (aclOnly) those the ACL index says are shared with the caller.
func (s *Service) listCandidates(ctx context.Context, who Identity, aclOnly bool) ([]*Secret, error) {
	if !aclOnly {
		kvs, err := s.st.List(ctx, projectPrefix(who.Project), "", 0)
		if err != nil {
			return nil, internal("list", err)
		}
		out := make([]*Secret, 0, len(kvs))
		prefix := projectPrefix(who.Project)
		for _, kv := range kvs {
			r, err := s.openRecord(ctx, who.Project, kv.Key[len(prefix):], kv)
			if KindOf(err) == KindInternal && errors.Is(err, crypto.ErrTampered) {
				continue // audited; an edited record is not listed
			} else if err != nil {
				return nil, err
			}
			out = append(out, s.dueActivation(r).Secret)
		}
		return out, nil
	}
	if who.User == "" {
		return nil, nil // an ACL names users; an anonymous caller is on none
	}
	prefix := aclUserPrefix(who.Source, who.User)
	kvs, err := s.st.List(ctx, prefix, "", 0)
	if err != nil {
		return nil, internal("list", err)
	}
	out := make([]*Secret, 0, len(kvs))
	for _, kv := range kvs {
		l, err := s.load(ctx, strings.TrimPrefix(kv.Key, prefix))
		if err != nil && KindOf(err) == KindNotFound {
			continue // deleted between the two reads
		} else if err != nil {
			return nil, err
		}
		out = append(out, l.rec.Secret)
	}
	return out, nil
}

func containsFold(s, sub string) bool {
	return sub == "" || strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func (q *ListQuery) match(s *Secret) bool {
	if !containsFold(s.Name, q.Name) || !containsFold(s.Algorithm, q.Algorithm) || !containsFold(s.Mode, q.Mode) {
		return false
	}
	if (q.ExactName != "" && s.Name != q.ExactName) || (q.BitLength != 0 && s.BitLength != q.BitLength) ||
		(q.Type != "" && s.Type != q.Type) || (q.State != "" && s.State != q.State) {
		return false
	}
	for _, f := range q.Created {
		if !f.match(&s.Created) {
			return false
		}
	}
	for _, f := range q.Updated {
		if !f.match(&s.Updated) {
			return false
		}
	}
	for _, f := range q.Expiration {
		if !f.match(s.Expiration) {
			return false
		}
	}
	for k, v := range q.Attributes {
		if got, ok := s.Attributes[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func timeCmp(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(*b)
}

func sortSecrets(list []*Secret, keys []SortKey) {
	if len(keys) == 0 {
		keys = []SortKey{{Field: "created"}}
	}
	slices.SortStableFunc(list, func(a, b *Secret) int {
		for _, k := range keys {
			var c int
			switch k.Field {
			case "created":
				c = a.Created.Compare(b.Created)
			case "updated":
				c = a.Updated.Compare(b.Updated)
			case "expiration":
				c = timeCmp(a.Expiration, b.Expiration)
			case "name":
				c = cmp.Compare(a.Name, b.Name)
			case "algorithm":
				c = cmp.Compare(a.Algorithm, b.Algorithm)
			case "bit_length":
				c = cmp.Compare(a.BitLength, b.BitLength)
			case "mode":
				c = cmp.Compare(a.Mode, b.Mode)
			case "secret_type":
				c = cmp.Compare(a.Type, b.Type)
			}
			if k.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
