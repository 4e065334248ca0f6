package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	bbolt "go.etcd.io/bbolt"
)

// ScanRaw implements store.RawScanner: keys and values are the store's own
// bytes, valid during the call only, so a walk over a million list index
// entries allocates nothing per entry.
func (s *Store) ScanRaw(ctx context.Context, prefix, from string, reverse bool, fn func(key, value []byte) bool) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	var derr error
	each := func(k []byte, raw []byte) bool {
		if len(raw) < 8 {
			derr = fmt.Errorf("bolt: corrupt entry %q: %d bytes", k, len(raw))
			return false
		}
		return fn(k, raw[8:])
	}
	var err error
	if reverse {
		err = s.walkBack(ctx, prefix, from, each)
	} else {
		err = s.walk(ctx, prefix, from, each)
	}
	return errors.Join(err, derr)
}

// walkBack is walk downwards: the entries under prefix below prefix+before
// (all of them when before is empty), last first.
func (s *Store) walkBack(ctx context.Context, prefix, before string, fn func(key []byte, raw []byte) bool) error {
	upper := prefix + before
	if before == "" {
		upper = successor(prefix)
	}
	ov, tx, err := s.snapshot(prefix, func(k string) bool { return upper == "" || k < upper })
	if err != nil {
		return err
	}
	defer tx.Rollback()
	s.readTrim(tx) // short walks (list pages) count as reads
	slices.SortFunc(ov, func(a, b kvRaw) int { return strings.Compare(b.key, a.key) })
	p := []byte(prefix)
	c := tx.Bucket(dataBucket).Cursor()
	var k, v []byte
	if upper == "" {
		k, v = c.Last()
	} else if k, _ = c.Seek([]byte(upper)); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k != nil && !bytes.HasPrefix(k, p) {
		k = nil
	}
	return s.merge(ctx, c, p, k, v, ov, func(ovKey string, k []byte) bool { return ovKey >= string(k) }, prev, fn)
}

func prev(c *bbolt.Cursor, p []byte) ([]byte, []byte) {
	k, v := c.Prev()
	if k != nil && !bytes.HasPrefix(k, p) {
		return nil, nil
	}
	return k, v
}

// successor is the least key above every key starting with prefix, or ""
// when there is none.
func successor(prefix string) string {
	b := []byte(prefix)
	for len(b) > 0 && b[len(b)-1] == 0xff {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return ""
	}
	b[len(b)-1]++
	return string(b)
}
