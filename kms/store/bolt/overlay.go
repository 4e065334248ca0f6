package bolt

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// The overlay holds the writes that are in the WAL but not yet in the
// bbolt file. Only the committer adds to it (after the WAL sync; a lazy
// write after its write(2), lazy.go); only
// the flusher removes from it (after bbolt has committed the same values).
// A read takes the overlay's read lock, copies what it needs and begins its
// bbolt read tx before letting go: whatever the flusher removes afterwards
// is in that tx's snapshot, so a reader never misses a key.
type overlay struct {
	mu   sync.RWMutex
	m    map[string]ovEntry
	last uint64 // highest LSN added
	// lastNote is the highest note number added (with last)
	lastNote uint64
	bytes    int // rough size of m, for the flusher's bounds
	full     *sync.Cond
}

type ovEntry struct {
	lsn uint64
	raw []byte // version + value; nil: deleted
}

func newOverlay() *overlay {
	o := &overlay{m: map[string]ovEntry{}}
	o.full = sync.NewCond(&o.mu)
	return o
}

func entrySize(key string, raw []byte) int { return len(key) + len(raw) + 64 }

type kvRaw struct {
	key string
	raw []byte // nil: deleted
}

// get returns key's raw value as (overlay ∪ bolt) has it; nil if absent.
// The returned slice is only valid until done.
func (s *Store) get(key string) (raw []byte, done func(), err error) {
	s.ov.mu.RLock()
	if e, ok := s.ov.m[key]; ok {
		s.ov.mu.RUnlock()
		return e.raw, func() {}, nil
	}
	tx, err := s.db.Begin(false)
	s.ov.mu.RUnlock()
	if err != nil {
		return nil, nil, closedErr(err)
	}
	s.readTrim(tx)
	return tx.Bucket(dataBucket).Get([]byte(key)), func() { tx.Rollback() }, nil
}

// walk calls fn with each live entry under prefix from prefix+after, in
// key order, merging the overlay over bbolt, until fn returns false. key
// and raw are only valid during the call.
func (s *Store) walk(ctx context.Context, prefix, after string, fn func(key []byte, raw []byte) bool) error {
	from := prefix + after
	ov, tx, err := s.snapshot(prefix, func(k string) bool { return k >= from })
	if err != nil {
		return err
	}
	defer tx.Rollback()
	s.readTrim(tx) // short walks (list pages) count as reads
	slices.SortFunc(ov, func(a, b kvRaw) int { return strings.Compare(a.key, b.key) })
	p := []byte(prefix)
	c := tx.Bucket(dataBucket).Cursor()
	k, v := c.Seek([]byte(from))
	if k != nil && !bytes.HasPrefix(k, p) {
		k = nil
	}
	return s.merge(ctx, c, p, k, v, ov, func(ovKey string, k []byte) bool { return ovKey <= string(k) }, next, fn)
}

// merge walks the sorted overlay entries ov and the cursor's entries under
// p, from (k, v), in one direction: first tells whether an overlay key
// comes before a bbolt key that way, step moves the cursor on. On equal
// keys the overlay's value wins; a nil raw is a deletion, skipped.
func (s *Store) merge(ctx context.Context, c *bbolt.Cursor, p, k, v []byte, ov []kvRaw,
	first func(ovKey string, k []byte) bool, step func(*bbolt.Cursor, []byte) ([]byte, []byte),
	fn func(key []byte, raw []byte) bool) error {
	n := 0
	for k != nil || len(ov) > 0 {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			s.maybeTrim(c.Bucket().Tx()) // a scan maps pages fast
		}
		var key, raw []byte
		switch {
		case len(ov) > 0 && (k == nil || first(ov[0].key, k)):
			if k != nil && ov[0].key == string(k) {
				k, v = step(c, p) // the overlay's value wins
			}
			key, raw, ov = []byte(ov[0].key), ov[0].raw, ov[1:]
			if raw == nil {
				continue // deleted
			}
		default:
			key, raw = k, v
			k, v = step(c, p)
		}
		if !fn(key, raw) {
			return nil
		}
	}
	return nil
}

// snapshot copies the overlay's entries under prefix that keep accepts
// and begins the bbolt read tx before letting the overlay go, so that no
// entry the flusher moves between them is missed (the caller rolls tx back).
func (s *Store) snapshot(prefix string, keep func(k string) bool) ([]kvRaw, *bbolt.Tx, error) {
	s.ov.mu.RLock()
	defer s.ov.mu.RUnlock()
	var ov []kvRaw
	for k, e := range s.ov.m {
		if strings.HasPrefix(k, prefix) && keep(k) {
			ov = append(ov, kvRaw{k, e.raw})
		}
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, nil, closedErr(err)
	}
	return ov, tx, nil
}

func next(c *bbolt.Cursor, p []byte) ([]byte, []byte) {
	k, v := c.Next()
	if k != nil && !bytes.HasPrefix(k, p) {
		return nil, nil
	}
	return k, v
}
