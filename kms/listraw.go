package kms

import (
	"encoding/binary"
	"strconv"
	"time"
)

// rawSummary is what a filter reads of a summary, as slices of the
// store's bytes: a scan rejects most entries with it, without allocating
// or decoding a Secret.
type rawSummary struct {
	name, alg, mode, typ, state []byte
	bits                        int64
	updated                     time.Time
	exp, act                    *time.Time // point into expT, actT
	expT, actT                  time.Time
}

// parse reads v up to the activation date; false if it is not a summary.
func (r *rawSummary) parse(v []byte) bool {
	if len(v) == 0 || v[0] != summaryVersion {
		return false
	}
	v = v[1:]
	ok := true
	str := func() []byte {
		n, w := binary.Uvarint(v)
		if w <= 0 || n > uint64(len(v)-w) {
			ok = false
			return nil
		}
		s := v[w : w+int(n)]
		v = v[w+int(n):]
		return s
	}
	varint := func() int64 {
		n, w := binary.Varint(v)
		if w <= 0 {
			ok = false
			return 0
		}
		v = v[w:]
		return n
	}
	instant := func() time.Time {
		sec := varint()
		ns, w := binary.Uvarint(v)
		if w <= 0 {
			ok = false
			return time.Time{}
		}
		v = v[w:]
		return time.Unix(sec, int64(ns))
	}
	r.name, r.alg, r.mode, r.typ, r.state = str(), str(), str(), str(), str()
	str() // creator
	str() // creator source
	r.bits = varint()
	r.updated = instant()
	r.exp, r.act = nil, nil
	for _, t := range []struct {
		p   **time.Time
		dst *time.Time
	}{{&r.exp, &r.expT}, {&r.act, &r.actT}} {
		if !ok || len(v) == 0 {
			return false
		}
		flag := v[0]
		v = v[1:]
		if flag == 1 {
			*t.dst = instant()
			*t.p = t.dst
		}
	}
	return ok
}

// rawMatch is q.match on an entry's key suffix and raw summary, with the
// activation that is due applied to the state (as scanMatching does). An
// entry it cannot read matches: the decode that follows reports it.
func (q *ListQuery) rawMatch(r *rawSummary, suffix, v []byte, now time.Time) bool {
	if !r.parse(v) {
		return true
	}
	if !containsFoldBytes(r.name, q.Name) || !containsFoldBytes(r.alg, q.Algorithm) || !containsFoldBytes(r.mode, q.Mode) {
		return false
	}
	if (q.ExactName != "" && string(r.name) != q.ExactName) || (q.BitLength != 0 && r.bits != int64(q.BitLength)) ||
		(q.Type != "" && string(r.typ) != string(q.Type)) {
		return false
	}
	if q.State != "" {
		st := string(r.state) // compared only: no copy
		if st == string(PreActive) && r.act != nil && !r.act.After(now) {
			st = string(Active)
		}
		if st != string(q.State) {
			return false
		}
	}
	if len(q.Created) > 0 {
		if len(suffix) < listIDAt {
			return true
		}
		nanos, err := strconv.ParseUint(string(suffix[:listIDAt-1]), 16, 64)
		if err != nil {
			return true
		}
		created := time.Unix(0, int64(nanos))
		for _, f := range q.Created {
			if !f.match(&created) {
				return false
			}
		}
	}
	for _, f := range q.Updated {
		if !f.match(&r.updated) {
			return false
		}
	}
	for _, f := range q.Expiration {
		if !f.match(r.exp) {
			return false
		}
	}
	return true
}

// containsFoldBytes is containsFold on the store's bytes.
func containsFoldBytes(s []byte, sub string) bool {
	if sub == "" {
		return true
	}
	for _, c := range s {
		if c >= 0x80 {
			return containsFold(string(s), sub)
		}
	}
	if !ascii(sub) {
		return containsFold(string(s), sub)
	}
next:
	for i := 0; i+len(sub) <= len(s); i++ {
		for j := 0; j < len(sub); j++ {
			if lowerASCII(s[i+j]) != lowerASCII(sub[j]) {
				continue next
			}
		}
		return true
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
