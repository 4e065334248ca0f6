package kms

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
)

// columnQuery reports whether a name column can answer q: a name
// substring, perhaps with counted filters (alg, mode, type, bits), in
// created order either way.
func (q *ListQuery) columnQuery() bool {
	if q.Name == "" || !byCreated(q) {
		return false
	}
	v := *q
	v.Name, v.Algorithm, v.Mode, v.Type, v.BitLength = "", "", "", "", 0
	return v.unfiltered()
}

// comboMatches is matchValues on a column's counted-values key.
func (q *ListQuery) comboMatches(key string) bool {
	r := rawReader{v: []byte(key), ok: true}
	alg, mode, typ := r.str(), r.str(), r.str()
	bits := r.varint()
	return r.ok && q.matchValues(string(alg), string(mode), SecretType(typ), int(bits))
}

// columnMismatches: consecutive lists whose column disagreed with the
// plain count before the column is dropped and built again. A write
// between the two reads disagrees once; a column that keeps disagreeing
// missed a write (a second Service on the same store, say).
const columnMismatches = 8

var matchPool = sync.Pool{New: func() any { return new([]int32) }}

// listByColumn answers a name= list (columnQuery) from the project's name
// column when who may read every plain entry: the column gives the plain
// entries that match, in order, at the cost of one sweep of the names;
// the set-aside ones are scanned and merged as listByCreated does. ok is
// false when there is no column to use: the caller scans instead.
func (s *Service) listByColumn(ctx context.Context, who Identity, q ListQuery) (_ []*Secret, _ int, ok bool, _ error) {
	plain, err := s.listCount(ctx, who.Project)
	if err != nil {
		return nil, 0, true, internal("list", err)
	}
	c := s.names.get(ctx, who.Project, plain)
	if c == nil {
		return nil, 0, false, nil
	}
	var extra []string
	err = s.scanMatching(ctx, who, &q, listAsidePrefix(who.Project), func(suffix string, _ *Secret) bool {
		extra = append(extra, suffix)
		return true
	})
	if err != nil {
		return nil, 0, true, err
	}
	needle := lowerName(nil, []byte(q.Name))
	buf := matchPool.Get().(*[]int32)
	defer matchPool.Put(buf)

	c.mu.RLock()
	if c.state != columnReady || c.len()-c.dead != plain {
		ready := c.state == columnReady
		c.mu.RUnlock()
		if ready && c.mismatch.Add(1) >= columnMismatches {
			s.names.drop(c)
		}
		return nil, 0, false, nil
	}
	c.mismatch.Store(0)
	accept := make([]bool, len(c.combos))
	for i, k := range c.combos {
		accept[i] = q.comboMatches(k)
	}
	matches := (*buf)[:0]
	if slices.Contains(accept, true) { // else no plain entry has the values: no sweep
		matches = c.sweep(needle, accept, matches)
	}
	*buf = matches
	total := len(matches) + len(extra)
	lo, hi := q.page(total)
	desc := len(q.Sort) == 1 && q.Sort[0].Desc
	if desc {
		lo, hi = total-hi, total-lo
	}
	page := c.window(matches, extra, lo, hi)
	c.mu.RUnlock()

	if desc {
		slices.Reverse(page)
		slices.SortStableFunc(page, func(a, b string) int { return -strings.Compare(a[:listIDAt], b[:listIDAt]) })
	}
	recs, err := s.pageRecords(ctx, who, &q, page)
	if err != nil {
		return nil, 0, true, err
	}
	out := recs[:0]
	for _, sec := range recs { // renamed since the column was read: not listed
		if q.match(sec) {
			out = append(out, sec)
		}
	}
	return out, total, true, nil
}

// window returns the suffixes at ascending positions [lo, hi) of the
// merge of the column's matches (entry indexes, ascending) with extra
// (suffixes, ascending). c.mu held.
func (c *nameColumn) window(matches []int32, extra []string, lo, hi int) []string {
	if hi <= lo {
		return nil
	}
	// at[e]: extra[e]'s merged position, e plus the matches before it.
	at := make([]int, len(extra))
	for e, suffix := range extra {
		created, id, ok := parseColumnSuffix([]byte(suffix))
		before := sort.Search(len(matches), func(i int) bool {
			if ok {
				return c.compareAt(int(matches[i]), created, id) >= 0
			}
			return c.suffixAt(int(matches[i])) >= suffix
		})
		at[e] = e + before
	}
	e := sort.SearchInts(at, lo)
	pj := lo - e // matches before lo
	page := make([]string, 0, hi-lo)
	for p := lo; p < hi; p++ {
		if e < len(at) && at[e] == p {
			page = append(page, extra[e])
			e++
		} else if pj < len(matches) {
			page = append(page, c.suffixAt(int(matches[pj])))
			pj++
		}
	}
	return page
}
