package kms

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
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

// listByCreated pages the caller's project in (created, id) order, up or
// down. Every plain entry is visible to who (plainUniform), so their count
// is the counter and position p is p keys into l/; the set-aside entries
// that who may see are merged in. The page [lo, hi) in ascending order
// starts at plain position lo-c, where c set-aside entries come before it.
func (s *Service) listByCreated(ctx context.Context, who Identity, q ListQuery) ([]*Secret, int, error) {
	var extra []string // visible, matching set-aside suffixes, ascending
	err := s.scanMatching(ctx, who, &q, listAsidePrefix(who.Project), func(suffix string, _ *Secret) bool {
		extra = append(extra, suffix)
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	plain, err := s.listCount(ctx, who.Project)
	if err != nil {
		return nil, 0, internal("list", err)
	}
	total := plain + len(extra)
	lo, hi := min(max(q.Offset, 0), total), total
	if q.Limit > 0 {
		hi = min(lo+q.Limit, total)
	}
	desc := len(q.Sort) == 1 && q.Sort[0].Desc
	if desc {
		lo, hi = total-hi, total-lo
	}
	suffixes, err := s.mergePage(ctx, who.Project, extra, lo, hi)
	if err != nil {
		return nil, 0, err
	}
	if desc {
		// Newest first; equal times keep ids ascending, as sortSecrets
		// orders them (exact within a page).
		slices.Reverse(suffixes)
		slices.SortStableFunc(suffixes, func(a, b string) int { return -strings.Compare(a[:listIDAt], b[:listIDAt]) })
	}
	out, err := s.pageRecords(ctx, who, &q, suffixes)
	return out, total, err
}

// mergePage returns the suffixes at ascending positions [lo, hi) of the
// merge of the plain entries with extra.
func (s *Service) mergePage(ctx context.Context, project string, extra []string, lo, hi int) ([]string, error) {
	need := hi - lo
	if need <= 0 {
		return nil, nil
	}
	prefix := listPrefix(project)
	p0 := max(0, lo-len(extra))
	start, err := s.plainKeyAt(ctx, project, p0)
	if err != nil {
		return nil, internal("list", err)
	}
	// si: the set-aside entries before start. At p0 == 0 the merge starts
	// from the very first entry; there may be no plain entry at all.
	si := 0
	switch {
	case p0 > 0 && start == "": // fewer plain entries than counted: deleted since
		si = len(extra)
	case p0 > 0:
		si, _ = slices.BinarySearch(extra, start[len(prefix):])
	}
	skip := lo - p0 - si // extra[:si] and plain[:p0] come first: lo-p0 = len(extra) >= si when p0 > 0
	out := make([]string, 0, need)
	take := func(suffix string) bool {
		if skip > 0 {
			skip--
			return true
		}
		out = append(out, suffix)
		return len(out) < need
	}
	if start != "" {
		err = store.Scan(ctx, s.st, prefix, start[len(prefix):], func(k string, _ []byte) bool {
			suffix := k[len(prefix):]
			for si < len(extra) && extra[si] < suffix {
				si++
				if !take(extra[si-1]) {
					return false
				}
			}
			return take(suffix)
		})
		if err != nil {
			return nil, internal("list", err)
		}
	}
	for ; si < len(extra) && len(out) < need; si++ {
		take(extra[si])
	}
	return out, nil
}

// pageRecords reads the records of a page's entries, checked as every
// read is; one deleted or changed since the index was read is left out.
func (s *Service) pageRecords(ctx context.Context, who Identity, q *ListQuery, suffixes []string) ([]*Secret, error) {
	now := s.now()
	out := make([]*Secret, 0, len(suffixes))
	for _, suffix := range suffixes {
		id := suffix[listIDAt:]
		kv, err := s.st.Get(ctx, recordKey(who.Project, id))
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, internal("read", err)
		}
		r, err := s.openRecord(ctx, who.Project, id, kv)
		if KindOf(err) == KindInternal && errors.Is(err, crypto.ErrTampered) {
			continue // audited; an edited record is not listed
		} else if err != nil {
			return nil, err
		}
		sec := s.dueActivation(r).Secret
		if s.visibleEntry(who, sec, q, now) {
			out = append(out, sec)
		}
	}
	return out, nil
}

// listSummaries answers a filtered or otherwise sorted list from the
// index's summaries: no record is decoded but the page's (and, for a KMIP
// attribute filter, those whose summary matches). In created order the
// two prefixes are merged as they stream, keeping only the page; in any
// other, only the first offset+limit in order are kept while scanning.
//
// asideOnly leaves out the plain entries (none matches: listIndexed).
func (s *Service) listSummaries(ctx context.Context, who Identity, q ListQuery, asideOnly bool) ([]*Secret, int, error) {
	prefixes := []string{listPrefix(who.Project), listAsidePrefix(who.Project)}
	if asideOnly {
		prefixes = prefixes[1:]
	} else if byCreated(&q) {
		return s.listSummariesByCreated(ctx, who, q, -1)
	}
	keep := 0
	if q.Limit > 0 {
		keep = max(q.Offset, 0) + q.Limit
	}
	var found []*Secret
	total := 0
	for _, prefix := range prefixes {
		err := s.scanMatching(ctx, who, &q, prefix, func(_ string, sec *Secret) bool {
			total++
			kept := *sec // sec is the scan's scratch
			found = append(found, &kept)
			if keep > 0 && len(found) >= 2*keep+1024 {
				sortSecrets(found, q.Sort)
				clear(found[keep:])
				found = found[:keep]
			}
			return true
		})
		if err != nil {
			return nil, 0, err
		}
	}
	sortSecrets(found, q.Sort)
	found = found[min(max(q.Offset, 0), len(found)):]
	if q.Limit > 0 && len(found) > q.Limit {
		found = found[:q.Limit]
	}
	suffixes := make([]string, len(found))
	for i, sec := range found {
		suffixes[i] = listSuffix(sec.Created, sec.ID)
	}
	out, err := s.pageRecords(ctx, who, &q, suffixes)
	return out, total, err
}

// listSummariesByCreated streams the matching entries in (created, id)
// order: the set-aside ones first collected, the plain ones merged in as
// the scan goes. plainTotal, when not negative, is the number of plain
// entries that match (the nv/ counters): the total is then known, so a
// page in either direction is a window of ascending positions and the
// scan stops at its end. Otherwise, ascending, it keeps the page;
// descending, the last offset+limit (a ring), since positions count from
// the end.
func (s *Service) listSummariesByCreated(ctx context.Context, who Identity, q ListQuery, plainTotal int) ([]*Secret, int, error) {
	var extra []string
	err := s.scanMatching(ctx, who, &q, listAsidePrefix(who.Project), func(suffix string, _ *Secret) bool {
		extra = append(extra, suffix)
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	desc := len(q.Sort) == 1 && q.Sort[0].Desc
	offset := max(q.Offset, 0)
	known := plainTotal >= 0
	total := plainTotal + len(extra)
	lo, hi := offset, -1 // ascending window [lo, hi); hi < 0: to the end
	if q.Limit > 0 {
		hi = offset + q.Limit
	}
	ring := desc && !known
	if desc && known {
		lo, hi = 0, max(total-offset, 0)
		if q.Limit > 0 {
			lo = max(hi-q.Limit, 0)
		}
	}
	keep := hi        // the ring's size
	var page []string // the window; or a ring of the last keep
	n := 0            // matching entries so far
	emit := func(suffix string) bool {
		switch {
		case ring && keep > 0 && len(page) == keep: // the ring is full
			page[n%keep] = suffix
		case ring:
			page = append(page, suffix)
		case n >= lo && (hi < 0 || n < hi):
			page = append(page, suffix)
		}
		n++
		return !known || hi < 0 || n < hi
	}
	si := 0
	more := true
	err = s.scanMatching(ctx, who, &q, listPrefix(who.Project), func(suffix string, _ *Secret) bool {
		for si < len(extra) && extra[si] < suffix {
			si++
			if more = emit(extra[si-1]); !more {
				return false
			}
		}
		more = emit(suffix)
		return more
	})
	if err != nil {
		return nil, 0, err
	}
	for ; more && si < len(extra); si++ {
		more = emit(extra[si])
	}
	if !known {
		total = n
	}
	if ring {
		if keep > 0 && len(page) == keep {
			r := n % keep // the ring's oldest
			page = append(page[r:], page[:r]...)
		}
		slices.Reverse(page)
		page = page[min(offset, len(page)):]
		if q.Limit > 0 && len(page) > q.Limit {
			page = page[:q.Limit]
		}
	} else if desc {
		slices.Reverse(page)
	}
	if desc {
		slices.SortStableFunc(page, func(a, b string) int { return -strings.Compare(a[:listIDAt], b[:listIDAt]) })
	}
	out, err := s.pageRecords(ctx, who, &q, page)
	return out, total, err
}

// scanMatching calls fn with each entry under prefix (of who's project)
// that matches q and that who may see, in key order, until fn returns
// false. sec is reused for the next entry: fn copies what it keeps.
func (s *Service) scanMatching(ctx context.Context, who Identity, q *ListQuery, prefix string, fn func(suffix string, sec *Secret) bool) error {
	now := s.now()
	sq := *q
	sq.Attributes = nil // not in summaries: checked on the record
	trusted := prefix == listPrefix(who.Project) && s.plainUniform(who)
	var bad error
	sec := &Secret{}
	filtered := !sq.unfiltered()
	err := store.ScanRaw(ctx, s.st, prefix, "", false, func(k, v []byte) bool {
		if filtered && !sq.rawMatch(k[len(prefix):], v, now) {
			return true // rejected on the store's bytes
		}
		suffix := string(k[len(prefix):])
		if err := decodeSummaryInto(sec, who.Project, suffix, v); err != nil {
			bad = err
			return false
		}
		dueActivationOf(sec, now)
		if !sq.match(sec) || (!trusted && !s.visibleEntry(who, sec, q, now)) {
			return true
		}
		if len(q.Attributes) > 0 {
			ok, err := s.attributesMatch(ctx, who.Project, sec.ID, q.Attributes)
			if err != nil {
				bad = err
				return false
			}
			if !ok {
				return true
			}
		}
		return fn(suffix, sec)
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return internal("list", err)
	}
	return nil
}

// attributesMatch reads a secret's record to check KMIP attributes, which
// summaries do not hold.
func (s *Service) attributesMatch(ctx context.Context, project, id string, attrs map[string]string) (bool, error) {
	kv, err := s.st.Get(ctx, recordKey(project, id))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	r, err := s.openRecord(ctx, project, id, kv)
	if errors.Is(err, crypto.ErrTampered) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	for k, v := range attrs {
		if got, ok := r.Attributes[k]; !ok || got != v {
			return false, nil
		}
	}
	return true, nil
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
