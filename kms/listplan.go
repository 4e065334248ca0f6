package kms

import "context"

// byCreated reports whether q is in Barbican's default order.
func byCreated(q *ListQuery) bool {
	return len(q.Sort) == 0 || (len(q.Sort) == 1 && q.Sort[0].Field == "created")
}

// listIndexed chooses how the index answers q. When who may read every
// plain entry, the plain part of the answer may be known without a scan:
// all of them (no filter, or a filter on counted values that every one
// matches, by the nv/ counters), none (a counted filter that none
// matches), or how many (counted filters only). All of them, in created
// or name order, is a count and a skip; none reads the set-aside entries
// only; how many lets a scan stop at the end of the page. Anything else
// scans the summaries.
func (s *Service) listIndexed(ctx context.Context, who Identity, q ListQuery) ([]*Secret, int, error) {
	if !s.plainUniform(who) {
		return s.listSummaries(ctx, who, q, false)
	}
	if s.names != nil && q.columnQuery() {
		if out, total, ok, err := s.listByColumn(ctx, who, q); ok || err != nil {
			return out, total, err
		}
	}
	all := q.unfiltered()
	if len(q.Attributes) == 0 && q.valueFiltered() {
		m, ok, err := s.plainMatching(ctx, who.Project, &q)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			p, err := s.listCount(ctx, who.Project)
			if err != nil {
				return nil, 0, internal("list", err)
			}
			switch {
			case m == 0:
				return s.listSummaries(ctx, who, q, true)
			case m >= p && q.valueOnly():
				all = true
			case q.valueOnly() && byCreated(&q):
				return s.listSummariesByCreated(ctx, who, q, m)
			}
		}
	}
	switch {
	case all && byCreated(&q):
		return s.listByCreated(ctx, who, q)
	case all && len(q.Sort) == 1 && q.Sort[0].Field == "name":
		return s.listByName(ctx, who, q)
	}
	return s.listSummaries(ctx, who, q, false)
}
