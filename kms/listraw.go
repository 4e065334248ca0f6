package kms

import (
	"encoding/binary"
	"strconv"
	"time"
)

// rawReader reads a summary's fields in order from the store's bytes,
// so that a scan rejects most entries after the first field it filters
// on, without allocating or decoding a Secret. ok turns false at the
// first field that is not there.
type rawReader struct {
	v  []byte
	ok bool
}

func (r *rawReader) str() []byte {
	n, w := binary.Uvarint(r.v)
	if w <= 0 || n > uint64(len(r.v)-w) {
		r.ok = false
		return nil
	}
	s := r.v[w : w+int(n)]
	r.v = r.v[w+int(n):]
	return s
}

func (r *rawReader) varint() int64 {
	n, w := binary.Varint(r.v)
	if w <= 0 {
		r.ok = false
		return 0
	}
	r.v = r.v[w:]
	return n
}

func (r *rawReader) instant() time.Time {
	sec := r.varint()
	ns, w := binary.Uvarint(r.v)
	if w <= 0 {
		r.ok = false
		return time.Time{}
	}
	r.v = r.v[w:]
	return time.Unix(sec, int64(ns))
}

// optional reads a flag and, when it is 1, a time into dst.
func (r *rawReader) optional(dst *time.Time) *time.Time {
	if len(r.v) == 0 {
		r.ok = false
		return nil
	}
	flag := r.v[0]
	r.v = r.v[1:]
	if flag != 1 {
		return nil
	}
	*dst = r.instant()
	return dst
}

// rawMatch is q.match on an entry's key suffix and raw summary, with the
// activation that is due applied to the state (as scanMatching does). An
// entry it cannot read matches: the decode that follows reports it.
func (q *ListQuery) rawMatch(suffix, v []byte, now time.Time) bool {
	if len(v) == 0 || v[0] != summaryVersion {
		return true
	}
	r := rawReader{v: v[1:], ok: true}
	name := r.str()
	if r.ok && (!containsFoldBytes(name, q.Name) || (q.ExactName != "" && string(name) != q.ExactName)) {
		return false
	}
	alg, mode, typ, state := r.str(), r.str(), r.str(), r.str()
	if !r.ok {
		return true
	}
	if !containsFoldBytes(alg, q.Algorithm) || !containsFoldBytes(mode, q.Mode) || (q.Type != "" && string(typ) != string(q.Type)) {
		return false
	}
	if q.BitLength == 0 && q.State == "" && len(q.Created) == 0 && len(q.Updated) == 0 && len(q.Expiration) == 0 {
		return true
	}
	r.str() // creator
	r.str() // creator source
	bits := r.varint()
	updated := r.instant()
	var expT, actT time.Time
	exp := r.optional(&expT)
	act := r.optional(&actT)
	if !r.ok {
		return true
	}
	if q.BitLength != 0 && bits != int64(q.BitLength) {
		return false
	}
	if q.State != "" {
		st := string(state) // compared only: no copy
		if st == string(PreActive) && act != nil && !act.After(now) {
			st = string(Active)
		}
		if st != string(q.State) {
			return false
		}
	}
	if len(q.Created) > 0 && len(suffix) >= listIDAt {
		if nanos, err := strconv.ParseUint(string(suffix[:listIDAt-1]), 16, 64); err == nil {
			created := time.Unix(0, int64(nanos))
			for _, f := range q.Created {
				if !f.match(&created) {
					return false
				}
			}
		}
	}
	for _, f := range q.Updated {
		if !f.match(&updated) {
			return false
		}
	}
	for _, f := range q.Expiration {
		if !f.match(exp) {
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
