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
// The page comes from the list index (listindex.go): without filters or
// with created order, at a cost that does not grow with the offset; with
// them, from a scan of the index's summaries. Only the page's records are
// read, and each is checked as a record is everywhere.
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
	if q.ACLOnly || !s.listIndexReady(ctx) {
		return s.listRecords(ctx, who, q)
	}
	return s.listIndexed(ctx, who, q)
}

// listRecords is the listing without the index: every candidate record
// read, checked and decoded. It serves acl_only lists (the ACL index names
// the candidates), stores whose index is not built yet, and tests as the
// oracle of the indexed paths.
func (s *Service) listRecords(ctx context.Context, who Identity, q ListQuery) ([]*Secret, int, error) {
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

// page is the window [lo, hi) of ascending positions q's offset and limit
// pick out of total entries.
func (q *ListQuery) page(total int) (lo, hi int) {
	lo, hi = min(max(q.Offset, 0), total), total
	if q.Limit > 0 {
		hi = min(lo+q.Limit, total)
	}
	return lo, hi
}

// unfiltered reports whether q keeps every secret the caller may see.
func (q *ListQuery) unfiltered() bool {
	return q.Name == "" && q.Algorithm == "" && q.Mode == "" && q.ExactName == "" && q.BitLength == 0 &&
		q.Type == "" && q.State == "" && len(q.Created) == 0 && len(q.Updated) == 0 && len(q.Expiration) == 0 &&
		len(q.Attributes) == 0
}

// visibleEntry reports whether a summary (or record) passes what every
// listing applies: in q's view (plain entries always are), readable by who.
func (s *Service) visibleEntry(who Identity, sec *Secret, q *ListQuery, now time.Time) bool {
	return q.View.shows(sec, now) && s.allowSecret(SecretRead, who, sec) == nil
}

// dueActivationOf is dueActivation on a summary.
func dueActivationOf(sec *Secret, now time.Time) *Secret {
	if sec.State == PreActive && sec.ActivationDate != nil && !sec.ActivationDate.After(now) {
		sec.State = Active
	}
	return sec
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
	if sub == "" {
		return true
	}
	if ascii(s) && ascii(sub) {
		// Without allocating: a summary scan tries every secret.
		for i := 0; i+len(sub) <= len(s); i++ {
			if strings.EqualFold(s[i:i+len(sub)], sub) {
				return true
			}
		}
		return false
	}
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
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
