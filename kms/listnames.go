package kms

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keywarden/keywarden/kms/store"
)

// plainNameKey is sec's ln/ key, or "" when its entry is not plain.
func plainNameKey(sec *Secret) string {
	if sec == nil || !plainEntry(sec) {
		return ""
	}
	return "ln/" + url.PathEscape(sec.Project) + "/" + strings.ReplaceAll(sec.Name, "\x00", "\x00\x01") + "\x00\x00" + sec.ID // listNamePrefix + listNameSuffix, one concatenation
}

// nameIndexOps keep ln/ in step with a record going from before to after
// (nil: none); the value is the creation time's 16 hex digits, which with
// the id gives the entry's l/ suffix.
func nameIndexOps(before, after *Secret) []store.Op {
	bk, ak := plainNameKey(before), plainNameKey(after)
	if bk == ak {
		return nil
	}
	var ops []store.Op
	if bk != "" {
		ops = append(ops, store.Delete(bk))
	}
	if ak != "" {
		created := binary.BigEndian.AppendUint64(nil, uint64(after.Created.UnixNano()))
		ops = append(ops, store.Put(ak, hex.AppendEncode(make([]byte, 0, listIDAt-1), created)))
	}
	return ops
}

// valueCountOps keep the nv/ counters in step (stores without
// store.Counter only, as n/).
func valueCountOps(before, after *Secret) []store.Op {
	var bk, ak string
	if before != nil && plainEntry(before) {
		bk = listValuesKey(before)
	}
	if after != nil && plainEntry(after) {
		ak = listValuesKey(after)
	}
	if bk == ak {
		return nil
	}
	var ops []store.Op
	if bk != "" {
		ops = append(ops, store.Add(bk, -1))
	}
	if ak != "" {
		ops = append(ops, store.Add(ak, 1))
	}
	return ops
}

// buildNameIndex adds ln/ entries and nv/ counts to an index built before
// they existed (m/list-index without m/list-index-2), from the l/ entries
// alone. Each entry's ops go with the compares that its l/ entry is
// unchanged and its ln/ key absent, so a count is added once even when a
// build is cut short and runs again.
func (s *Service) buildNameIndex(ctx context.Context) error {
	start, n := time.Now(), 0
	_, counts := s.st.(store.Counter)
	after := ""
	for {
		kvs, err := s.st.List(ctx, "l/", after, scanPage)
		if err != nil {
			return err
		}
		var batch []indexWrite
		for _, kv := range kvs {
			esc, suffix, ok := strings.Cut(kv.Key[len("l/"):], "/")
			project, err := url.PathUnescape(esc)
			if !ok || err != nil {
				return errSummary
			}
			sec, err := decodeSummary(project, suffix, kv.Value)
			if err != nil {
				return err
			}
			w := indexWrite{
				cmps: []store.Cmp{{Key: kv.Key, Version: kv.Version}, {Key: plainNameKey(sec)}},
				ops:  nameIndexOps(nil, sec),
			}
			if !counts {
				w.ops = append(w.ops, valueCountOps(nil, sec)...)
			}
			batch = append(batch, w)
		}
		if err := s.writeIndexBatch(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		if len(kvs) < scanPage {
			break
		}
		after = kvs[len(kvs)-1].Key[len("l/"):] + "\x00"
	}
	err := s.st.Txn(ctx, []store.Cmp{{Key: listIndexMarker2}}, []store.Op{store.Put(listIndexMarker2, []byte("1"))})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	s.log.Info("kms: list index by name and value counts built", "entries", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// nameEntry is an entry in name order: key is its listNameSuffix, suffix
// its l/ suffix (created/id), which pageRecords reads.
type nameEntry struct{ key, suffix string }

// nameOrder compares listNameSuffixes as Barbican sorts by name: by name
// either way, then by id ascending.
func nameOrder(desc bool) func(a, b string) int {
	return func(a, b string) int {
		if !desc {
			return strings.Compare(a, b)
		}
		ga, gb := nameGroupLen([]byte(a)), nameGroupLen([]byte(b))
		if c := strings.Compare(a[:ga], b[:gb]); c != 0 {
			return -c
		}
		return strings.Compare(a[ga:], b[gb:])
	}
}

// listByName pages the caller's project by name, every plain entry being
// visible to who (as listByCreated): the set-aside entries that match are
// read and sorted, the plain ones come from ln/ at a position (plainByName),
// and the two are merged as mergePage does.
func (s *Service) listByName(ctx context.Context, who Identity, q ListQuery) ([]*Secret, int, error) {
	desc := q.Sort[0].Desc
	order := nameOrder(desc)
	var extra []nameEntry
	err := s.scanMatching(ctx, who, &q, listAsidePrefix(who.Project), func(suffix string, sec *Secret) bool {
		extra = append(extra, nameEntry{listNameSuffix(sec.Name, sec.ID), suffix})
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(extra, func(a, b nameEntry) int { return order(a.key, b.key) })
	plain, err := s.listCount(ctx, who.Project)
	if err != nil {
		return nil, 0, internal("list", err)
	}
	total := plain + len(extra)
	lo, hi := q.page(total)
	if hi <= lo {
		return nil, total, nil
	}
	p0 := max(0, lo-len(extra))
	window, err := s.plainByName(ctx, who.Project, desc, p0, hi-p0, plain)
	if err != nil {
		return nil, 0, internal("list", err)
	}
	si := 0 // the set-aside entries before window[0]; from the very first at p0 == 0
	switch {
	case p0 > 0 && len(window) == 0:
		si = len(extra)
	case p0 > 0:
		si, _ = slices.BinarySearchFunc(extra, window[0].key, func(e nameEntry, k string) int { return order(e.key, k) })
	}
	skip := lo - p0 - si
	page := make([]string, 0, hi-lo)
	take := func(e nameEntry) {
		if skip > 0 {
			skip--
		} else if len(page) < hi-lo {
			page = append(page, e.suffix)
		}
	}
	for _, w := range window {
		for si < len(extra) && order(extra[si].key, w.key) < 0 {
			take(extra[si])
			si++
		}
		take(w)
	}
	for ; si < len(extra); si++ {
		take(extra[si])
	}
	out, err := s.pageRecords(ctx, who, &q, page)
	return out, total, err
}

// plainByName returns the plain entries of project at positions [from,
// from+n) in name order (desc: names descending, ids ascending); count is
// their number. It walks ln/ from whichever end is nearer, stepping over
// keys without decoding them. Descending, a name's group is measured as
// the walk passes it, and the ids wanted of it are then read forward from
// the group's first key.
func (s *Service) plainByName(ctx context.Context, project string, desc bool, from, n, count int) ([]nameEntry, error) {
	prefix := listNamePrefix(project)
	if !desc {
		if from <= count/2 {
			return s.nameRange(ctx, prefix, "", false, from, n)
		}
		skip := max(count-from-n, 0) // positions from the end
		return s.nameRange(ctx, prefix, "", true, skip, count-from-skip)
	}
	// Walking back from the end meets the groups in desc order; walking
	// forward, in reverse. seen counts the entries of the groups passed.
	back := from <= count/2
	type read struct {
		start    string // the group's first key, ids ascending from it
		skip, nn int
	}
	var reads []read
	var group, first []byte
	size, seen := 0, 0
	done := func() bool { // the current group is passed: does the walk go on?
		dp := seen // its first desc position
		if !back {
			dp = count - seen - size
		}
		if size > 0 && dp < from+n && dp+size > from {
			j0 := max(0, from-dp)
			reads = append(reads, read{string(first), j0, min(size, from+n-dp) - j0})
		}
		seen += size
		if back {
			return seen < from+n
		}
		return count-seen > from
	}
	more := true
	err := store.ScanRaw(ctx, s.st, prefix, "", back, func(k, _ []byte) bool {
		suffix := k[len(prefix):]
		if size > 0 && bytes.HasPrefix(suffix, group) {
			size++
		} else {
			if more = done(); !more {
				return false
			}
			gl := nameGroupLen(suffix)
			group, size = append(group[:0], suffix[:gl]...), 1
			first = append(first[:0], suffix...)
		}
		if back { // walking back, the last key seen of a group is its first
			first = append(first[:0], suffix...)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if more {
		done()
	}
	if !back {
		slices.Reverse(reads)
	}
	var out []nameEntry
	for _, r := range reads {
		got, err := s.nameRange(ctx, prefix, r.start, false, r.skip, r.nn)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// nameRange reads n ln/ entries after skipping skip, forward from
// prefix+after, or back from the end (then returned in key order).
func (s *Service) nameRange(ctx context.Context, prefix, after string, back bool, skip, n int) ([]nameEntry, error) {
	if n <= 0 {
		return nil, nil
	}
	out := make([]nameEntry, 0, n)
	var bad bool
	err := store.ScanRaw(ctx, s.st, prefix, after, back, func(k, v []byte) bool {
		if skip > 0 {
			skip--
			return true
		}
		key := string(k[len(prefix):])
		gl := nameGroupLen([]byte(key))
		if gl == 0 || len(v) != listIDAt-1 {
			bad = true
			return false
		}
		out = append(out, nameEntry{key, string(v) + "/" + key[gl:]})
		return len(out) < n
	})
	if err == nil && bad {
		err = errSummary
	}
	if back {
		slices.Reverse(out)
	}
	return out, err
}
