package kms

import (
	"context"
	"net/url"
	"strconv"
	"strings"

	"github.com/keywarden/keywarden/kms/store"
)

// maxValueKeys bounds the nv/ keys a list reads: past it (a project with
// that many algorithms) the counters are not worth reading and the list
// scans.
const maxValueKeys = 4096

// valueFiltered reports whether q filters on a value the nv/ counters
// hold (algorithm, mode, type, bit length), and valueOnly whether on
// nothing else.
func (q *ListQuery) valueFiltered() bool {
	return q.Algorithm != "" || q.Mode != "" || q.Type != "" || q.BitLength != 0
}

func (q *ListQuery) valueOnly() bool {
	v := *q
	v.Algorithm, v.Mode, v.Type, v.BitLength = "", "", "", 0
	return v.unfiltered()
}

// matchValues is q.match on the counted values only.
func (q *ListQuery) matchValues(alg, mode string, typ SecretType, bits int) bool {
	return containsFold(alg, q.Algorithm) && containsFold(mode, q.Mode) &&
		(q.Type == "" || typ == q.Type) && (q.BitLength == 0 || bits == q.BitLength)
}

// plainMatching counts the project's plain entries whose counted values
// match q, from the nv/ counters; ok is false when they cannot tell (a
// store that counts itself, too many combinations).
func (s *Service) plainMatching(ctx context.Context, project string, q *ListQuery) (n int, ok bool, err error) {
	if _, counts := s.st.(store.Counter); counts {
		return 0, false, nil
	}
	prefix := listValuesPrefix(project)
	keys, bad := 0, false
	err = store.ScanRaw(ctx, s.st, prefix, "", false, func(k, v []byte) bool {
		if keys++; keys > maxValueKeys {
			return false
		}
		parts := strings.Split(string(k[len(prefix):]), "/")
		if len(parts) != 4 {
			bad = true
			return false
		}
		var vals [3]string
		for i := range vals {
			var e error
			if vals[i], e = url.PathUnescape(parts[i]); e != nil {
				bad = true
				return false
			}
		}
		bits, e := strconv.Atoi(parts[3])
		if e != nil {
			bad = true
			return false
		}
		if q.matchValues(vals[0], vals[1], SecretType(vals[2]), bits) {
			n += int(store.CounterValue(v))
		}
		return true
	})
	if err != nil {
		return 0, false, internal("list", err)
	}
	if bad {
		return 0, false, internal("list", errSummary)
	}
	return n, keys <= maxValueKeys, nil
}
