package kms

import (
	"context"
	"encoding/binary"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// The list index lets a project's listing read a page without decoding the
// project's records. Each secret has one entry, written and deleted in the
// same store transaction as its record:
//
//	l/<project>/<created>/<id>   → summary   "plain": listed to every caller the policy lets read an ordinary secret
//	lx/<project>/<created>/<id>  → summary   set aside: destroyed, expiring, private or with ACL users
//	n/<project>                  → count of the project's l/ entries (a store counter, Add ops)
//	ln/<project>/<name>/<id>     → created: the l/ entries in name order (listnames.go)
//	nv/<project>/<values>        → count of l/ entries with those values (listvalues.go)
//	m/list-index                 → present once every record has its entry
//	m/list-index-2               → ... and the l/ entries their ln/ entry and nv/ count
//
// <created> is the creation time in nanoseconds, 16 hex digits, so both
// prefixes are in (created, id) order: Barbican's default sort. A summary
// holds the fields lists filter, sort and authorize on (summary below).
// Plain entries need no check each, so a page at any offset is a counter
// read, a skip over keys and the page's own records; the set-aside entries
// are few in practice and read in full.

// The index keys (listPrefix, listAsidePrefix, listCountKey, fencePrefix,
// listIndexMarker) are built in keys.go with the rest of the layout.

// listIndexBuildTimeout bounds the one-time build at start-up;
// listIndexCheckTimeout the marker read that every start-up does.
const (
	listIndexBuildTimeout = time.Hour
	listIndexCheckTimeout = 10 * time.Second
)

// listSuffix is an entry's key after its prefix; its id starts at
// listIDAt.
func listSuffix(created time.Time, id string) string {
	// By hand, not fmt: every create builds several of these keys.
	const hexDigits = "0123456789abcdef"
	b := make([]byte, listIDAt, listIDAt+len(id))
	n := uint64(created.UnixNano())
	for i := listIDAt - 2; i >= 0; i-- {
		b[i] = hexDigits[n&0xf]
		n >>= 4
	}
	b[listIDAt-1] = '/'
	return string(append(b, id...))
}

const listIDAt = 17

// plainEntry reports whether sec's entry goes under l/: any caller who may
// read one such secret of the project may read all of them (checked per
// caller by plainUniform), and none is hidden by state or time.
func plainEntry(sec *Secret) bool {
	return sec.State != Destroyed && sec.Expiration == nil &&
		(sec.ACL == nil || (sec.ACL.ProjectAccess && len(sec.ACL.Users) == 0))
}

func listKey(sec *Secret) string {
	if plainEntry(sec) {
		return listPrefix(sec.Project) + listSuffix(sec.Created, sec.ID)
	}
	return listAsidePrefix(sec.Project) + listSuffix(sec.Created, sec.ID)
}

// listIndexOps keep the index in step with a record going from before to
// after (nil: no record). On a store that counts keys itself (etcd) no
// counter is written: concurrent creators in one project would all compare
// the same counters' revisions, and etcd has no increment to spare them
// (32 creators went from 1,538 to 107 creates/s).
func (s *Service) listIndexOps(before, after *Secret) []store.Op {
	ops := make([]store.Op, 0, 10)
	var delta int64
	var project string
	if before != nil {
		project = before.Project
		if k := listKey(before); after == nil || listKey(after) != k {
			ops = append(ops, store.Delete(k))
		}
		if plainEntry(before) {
			delta--
		}
	}
	if after != nil {
		project = after.Project
		ops = append(ops, store.Put(listKey(after), encodeSummary(after)))
		if plainEntry(after) {
			delta++
		}
	}
	ops = append(ops, nameIndexOps(before, after)...)
	_, counts := s.st.(store.Counter)
	if !counts {
		ops = append(ops, valueCountOps(before, after)...)
	}
	if delta != 0 && !counts {
		sec := after
		if sec == nil {
			sec = before
		}
		suffix := listSuffix(sec.Created, sec.ID)
		esc := url.PathEscape(project)
		ops = append(ops, store.Add("n/"+esc, delta))
		for level, digits := range fenceDigits { // fencePrefix's keys, built in one concatenation each
			ops = append(ops, store.Add(fenceNames[level]+esc+"/"+suffix[:digits], delta))
		}
	}
	return ops
}

// plainKeyAt returns the key of the plain entry at position p of project
// (0-based, in key order), or "" when there are not that many. The fences
// narrow it down to one narrow window; a window whose count disagrees with
// its keys (a write between the reads) falls back to skipping from the
// start.
func (s *Service) plainKeyAt(ctx context.Context, project string, p int) (string, error) {
	prefix := listPrefix(project)
	if _, counts := s.st.(store.Counter); counts {
		return store.Nth(ctx, s.st, prefix, "", p) // no fences there
	}
	window, rem := "", int64(p)
	for level := range fenceDigits {
		fp := fencePrefix(level, project)
		found := ""
		err := store.Scan(ctx, s.st, fp, window, func(k string, v []byte) bool {
			w := k[len(fp):]
			if !strings.HasPrefix(w, window) {
				return false
			}
			if n := store.CounterValue(v); rem < n {
				found = w
				return false
			} else {
				rem -= n
			}
			return true
		})
		if err != nil {
			return "", err
		}
		if found == "" { // past the end, or fences behind the keys: skip from the start
			return store.Nth(ctx, s.st, prefix, "", p)
		}
		window = found
	}
	key, err := store.Nth(ctx, s.st, prefix, window, int(rem))
	if err != nil || strings.HasPrefix(key, prefix+window) {
		return key, err
	}
	return store.Nth(ctx, s.st, prefix, "", p)
}

// A summary is a compact binary form of what a listing reads of a secret:
// version 1, then name, algorithm, mode, type, state, creator, creator
// source (each a uvarint length and bytes), bit length, updated (Unix
// seconds and nanoseconds), expiration and activation date (0 or 1, then
// the time), and the ACL (0, or 1, project access, source, users). The
// id and created time are in the key. A summary is not tagged: it decides
// only what is looked at; what is served is the record, checked.
const summaryVersion = 1

func encodeSummary(sec *Secret) []byte {
	b := make([]byte, 0, 64+len(sec.Name)+len(sec.Creator)+len(sec.CreatorSource))
	b = append(b, summaryVersion)
	for _, s := range []string{sec.Name, sec.Algorithm, sec.Mode, string(sec.Type), string(sec.State), sec.Creator, sec.CreatorSource} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, int64(sec.BitLength))
	b = appendTime(b, sec.Updated)
	for _, t := range []*time.Time{sec.Expiration, sec.ActivationDate} {
		if t == nil {
			b = append(b, 0)
			continue
		}
		b = appendTime(append(b, 1), *t)
	}
	if sec.ACL == nil {
		return append(b, 0)
	}
	b = append(b, 1, boolByte(sec.ACL.ProjectAccess))
	b = appendString(b, sec.ACL.Source)
	b = binary.AppendUvarint(b, uint64(len(sec.ACL.Users)))
	for _, u := range sec.ACL.Users {
		b = appendString(b, u)
	}
	return b
}

// appendTime writes seconds and nanoseconds: exact for any year (Unix
// nanoseconds end in 2262, and expirations in 2999 are seen).
func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

var errSummary = errors.New("kms: unreadable list index entry")

// summaryReader reads a summary held as one string, so that every string
// field is a substring of it: one allocation per entry, not one per field.
type summaryReader struct {
	b   string
	err error
}

func (r *summaryReader) fail() {
	r.err, r.b = errSummary, ""
}

func (r *summaryReader) uvarint() uint64 {
	var v uint64
	for i := 0; i < len(r.b) && i < binary.MaxVarintLen64; i++ {
		c := r.b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.b = r.b[i+1:]
			return v
		}
	}
	r.fail()
	return 0
}

func (r *summaryReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1) // zig-zag, as binary.AppendVarint
}

func (r *summaryReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *summaryReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *summaryReader) instant() time.Time {
	sec := r.varint()
	return time.Unix(sec, int64(r.uvarint())).UTC()
}

func (r *summaryReader) time() *time.Time {
	if r.byte() == 0 {
		return nil
	}
	t := r.instant()
	return &t
}

// decodeSummary is the secret as far as an entry of project tells it;
// suffix is the entry's key after its prefix. value may be the store's
// memory: nothing of it is kept.
func decodeSummary(project, suffix string, value []byte) (*Secret, error) {
	sec := &Secret{}
	if err := decodeSummaryInto(sec, project, suffix, value); err != nil {
		return nil, err
	}
	return sec, nil
}

// decodeSummaryInto is decodeSummary into dst, which it overwrites: a
// scan reuses one, so an entry that does not match costs no pointerful
// allocation for the collector to trace.
func decodeSummaryInto(dst *Secret, project, suffix string, value []byte) error {
	if len(suffix) <= listIDAt || suffix[listIDAt-1] != '/' {
		return errSummary
	}
	nanos, err := strconv.ParseUint(suffix[:listIDAt-1], 16, 64)
	if err != nil {
		return errSummary
	}
	r := &summaryReader{b: string(value)}
	if r.byte() != summaryVersion {
		return errSummary
	}
	*dst = Secret{ID: suffix[listIDAt:], Project: project, Created: time.Unix(0, int64(nanos)).UTC()}
	dst.Name, dst.Algorithm, dst.Mode = r.string(), r.string(), r.string()
	dst.Type, dst.State = SecretType(r.string()), State(r.string())
	dst.Creator, dst.CreatorSource = r.string(), r.string()
	dst.BitLength = int(r.varint())
	dst.Updated = r.instant()
	dst.Expiration, dst.ActivationDate = r.time(), r.time()
	if r.byte() == 1 {
		acl := &ACL{ProjectAccess: r.byte() == 1, Source: r.string()}
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			return errSummary
		}
		acl.Users = make([]string, 0, n)
		for range n {
			acl.Users = append(acl.Users, r.string())
		}
		dst.ACL = acl
	}
	return r.err
}

// listIndexReady reports whether the index covers every record, building
// it first when this store has none yet (a store written before the index
// existed). The build reads every record once; later start-ups read only
// the marker.
func (s *Service) listIndexReady(ctx context.Context) bool {
	if s.listIndex.Load() {
		return true
	}
	s.listIndexMu.Lock()
	defer s.listIndexMu.Unlock()
	if s.listIndex.Load() {
		return true
	}
	if err := s.buildListIndex(ctx); err != nil {
		s.log.Warn("kms: the list index cannot be built now; lists read whole projects until it is", "err", err)
		return false
	}
	s.listIndex.Store(true)
	return true
}

// buildListIndex writes the entry of every record that has none, then the
// marker. Entries are derived data, written with the compare that their
// record is unchanged and the entry absent, so a build that was cut short,
// or runs on two nodes at once, only finishes the work.
func (s *Service) buildListIndex(ctx context.Context) error {
	// The usual start-up reads only these two: a store that does not
	// answer soon (etcd without quorum) must not hold start-up for the
	// build's long timeout.
	quick, cancel := context.WithTimeout(ctx, listIndexCheckTimeout)
	defer cancel()
	if _, err := s.st.Get(quick, listIndexMarker2); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, err := s.st.Get(quick, listIndexMarker); err == nil {
		return s.buildNameIndex(ctx) // an index of session 5: l/ without ln/ and nv/
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if kvs, err := s.st.List(quick, recordsPrefix(), "", 1); err != nil {
		return err
	} else if len(kvs) == 0 {
		// Nothing to index: the first record written brings the marker
		// (markerOps), so a store is never changed by start-up alone.
		s.listMarkerPending.Store(true)
		return nil
	}
	start, n := time.Now(), 0
	after := ""
	for {
		kvs, err := s.st.List(ctx, recordsPrefix(), after, scanPage)
		if err != nil {
			return err
		}
		var batch []indexWrite
		for _, kv := range kvs {
			project, id, ok := splitRecordKey(kv.Key)
			if !ok {
				continue
			}
			r, err := s.verifyRecord(ctx, project, id, kv.Version, kv.Value)
			if errors.Is(err, crypto.ErrTampered) {
				_, _ = s.openRecord(ctx, project, id, kv) // audits and logs it; not indexed
				continue
			} else if err != nil {
				return err
			}
			batch = append(batch, indexWrite{
				cmps: []store.Cmp{{Key: kv.Key, Version: kv.Version}, {Key: listKey(r.Secret)}},
				ops:  s.listIndexOps(nil, r.Secret),
			})
		}
		if err := s.writeIndexBatch(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		if len(kvs) < scanPage {
			break
		}
		after = kvs[len(kvs)-1].Key[len(recordsPrefix()):] + "\x00"
	}
	err := s.st.Txn(ctx, []store.Cmp{{Key: listIndexMarker}, {Key: listIndexMarker2}}, s.markers())
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	if n > 0 {
		s.log.Info("kms: list index built", "secrets", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// markerOps is the marker's write, added to a new record's transaction
// while the store holds none yet.
func (s *Service) markerOps() []store.Op {
	if !s.listMarkerPending.Load() {
		return nil
	}
	return s.markers()
}

func (s *Service) markers() []store.Op {
	return []store.Op{store.Put(listIndexMarker, []byte("1")), store.Put(listIndexMarker2, []byte("1"))}
}

// indexWrite is one record's entry with its compares.
type indexWrite struct {
	cmps []store.Cmp
	ops  []store.Op
}

// indexTxnRecords keeps a build transaction under etcd's default limit of
// 128 operations (--max-txn-ops); the chunks go concurrently, and bolt
// commits them together.
const indexTxnRecords = 32

func (s *Service) writeIndexBatch(ctx context.Context, batch []indexWrite) error {
	errs := make(chan error, len(batch)/indexTxnRecords+1)
	chunks := 0
	for i := 0; i < len(batch); i += indexTxnRecords {
		chunk := batch[i:min(i+indexTxnRecords, len(batch))]
		chunks++
		go func() {
			var cmps []store.Cmp
			var ops []store.Op
			for _, w := range chunk {
				cmps, ops = append(cmps, w.cmps...), append(ops, w.ops...)
			}
			err := s.st.Txn(ctx, cmps, ops)
			if errors.Is(err, store.ErrConflict) { // some entries are there already: one at a time
				err = nil
				for _, w := range chunk {
					if e := s.st.Txn(ctx, w.cmps, w.ops); e != nil && !errors.Is(e, store.ErrConflict) {
						err = e
						break
					}
				}
			}
			errs <- err
		}()
	}
	var first error
	for range chunks {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// plainUniform reports whether who may read every plain entry of its
// project: the policy then reads only whether who is the creator (plain
// secrets are not private and list no ACL users), so two probes tell.
func (s *Service) plainUniform(who Identity) bool {
	for _, c := range [][2]string{{who.User, who.Source}, {"\x00", "\x00"}} {
		probe := &Secret{Project: who.Project, Creator: c[0], CreatorSource: c[1]}
		if s.allowSecret(SecretRead, who, probe) != nil {
			return false
		}
	}
	return true
}

// listCount is the number of plain entries of project.
func (s *Service) listCount(ctx context.Context, project string) (int, error) {
	if c, ok := s.st.(store.Counter); ok {
		n, err := c.Count(ctx, listPrefix(project))
		return int(n), err
	}
	kv, err := s.st.Get(ctx, listCountKey(project))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	return int(store.CounterValue(kv.Value)), nil
}
