package kms

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// The index-backed pages of a listing (ListSecrets chooses among them in
// listplan.go): created order by counts and a skip, or a scan of the
// summaries that keeps only the page.

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
	lo, hi := q.page(total)
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
