package kms

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/kms/store"
)

// DefaultNameColumnBytes bounds the memory of all name columns together
// (Config.NameColumnBytes). A million plain entries with 13-byte names
// take about 50 MiB.
const DefaultNameColumnBytes = 128 << 20

// nameColumnBytesPerEntry is what an entry costs besides its name: the
// estimate that keeps a project too large for the budget from a build.
const nameColumnBytesPerEntry = 4 + 8 + 16 + 4 + 1

// columnSkip: how long a project the column cannot hold is listed by
// scanning before another build is tried.
const columnSkip = 10 * time.Minute

// nameColumns holds the projects' name columns, built on a project's first
// name= list and bounded by a byte budget (least recently used first out).
//
// Exactness: every committed transaction that puts or deletes an l/ key
// refreshes that entry of its project's column (touched, called by
// s.commit after the store applied it) from the store's current value,
// under the column's lock. Reading the current value makes a refresh
// idempotent and order-free: whichever refresh of a key runs last reads
// the state after every commit before it, so two writers whose
// refreshes interleave still leave the column equal to the store. A
// build registers the column before its scan; refreshes during the scan
// only note the key, and are redone from the store when it ends, so a
// write the scan missed is not lost either. A store error in a refresh
// drops the column. Only stores whose writers all pass here qualify: a
// bolt file belongs to one process; etcd (other nodes write) has none.
type nameColumns struct {
	st     store.Store
	budget int64
	active atomic.Int32 // columns held: touched's fast exit when none

	mu   sync.Mutex
	cols map[string]*nameColumn // by escaped project
	skip map[string]time.Time   // projects listed by scanning until then
}

// newNameColumns is nil (no columns) on a store written by others too
// (store.Counter: etcd) or without raw scans, or when budget < 0.
func newNameColumns(st store.Store, budget int64) *nameColumns {
	_, raw := st.(store.RawScanner)
	_, shared := st.(store.Counter)
	if !raw || shared || budget < 0 {
		return nil
	}
	if budget == 0 {
		budget = DefaultNameColumnBytes
	}
	return &nameColumns{st: st, budget: budget, cols: map[string]*nameColumn{}, skip: map[string]time.Time{}}
}

// get returns project's column, building it when there is none; nil when
// the project is listed by scanning (too large, not representable, a
// failed build). A column another query is building is returned not yet
// ready. plain is the project's plain entry count.
func (n *nameColumns) get(ctx context.Context, project string, plain int) *nameColumn {
	esc := url.PathEscape(project)
	now := time.Now()
	n.mu.Lock()
	if c := n.cols[esc]; c != nil {
		c.lastUse.Store(now.UnixNano())
		n.evictLocked(0, c) // writes may have grown it past the budget
		held := n.cols[esc] == c
		n.mu.Unlock()
		if !held {
			return nil
		}
		return c
	}
	if until, ok := n.skip[esc]; ok && now.Before(until) {
		n.mu.Unlock()
		return nil
	}
	est := int64(plain) * (nameColumnBytesPerEntry + 8)
	if est > n.budget {
		n.skipLocked(esc)
		n.mu.Unlock()
		return nil
	}
	n.evictLocked(est, nil)
	c := newNameColumn(esc)
	c.reserve(plain)
	c.lastUse.Store(now.UnixNano())
	n.cols[esc] = c
	n.active.Add(1)
	n.mu.Unlock()
	if err := n.build(ctx, c); err != nil {
		n.drop(c)
		if errors.Is(err, errColumn) {
			n.mu.Lock()
			n.skipLocked(esc)
			n.mu.Unlock()
		}
		return nil
	}
	n.mu.Lock()
	n.evictLocked(0, c) // the estimate was a guess: others go, or this one
	held := n.cols[esc] == c
	if !held {
		n.skipLocked(esc)
	}
	n.mu.Unlock()
	if !held {
		return nil
	}
	return c
}

// NameColumnsBytes is the memory the name columns hold now.
func (s *Service) NameColumnsBytes() int64 {
	if s.names == nil {
		return 0
	}
	s.names.mu.Lock()
	defer s.names.mu.Unlock()
	var n int64
	for _, c := range s.names.cols {
		n += c.size.Load()
	}
	return n
}

// skipLocked lists esc by scanning for a while; the map stays small.
func (n *nameColumns) skipLocked(esc string) {
	if len(n.skip) >= 4096 {
		clear(n.skip)
	}
	n.skip[esc] = time.Now().Add(columnSkip)
}

// evictLocked drops ready columns other than keep, least recently used
// first, until need more bytes fit the budget; then keep itself if it
// alone does not fit. n.mu held.
func (n *nameColumns) evictLocked(need int64, keep *nameColumn) {
	for {
		var used int64
		var lru *nameColumn
		for _, c := range n.cols {
			used += c.size.Load()
			if c != keep && (lru == nil || c.lastUse.Load() < lru.lastUse.Load()) {
				lru = c
			}
		}
		if used+need <= n.budget {
			return
		}
		if lru == nil {
			lru = keep
		}
		if lru == nil {
			return
		}
		lru.mu.Lock()
		building := lru.state == columnBuilding
		if !building {
			lru.release()
		}
		lru.mu.Unlock()
		if building { // its builder checks the budget itself
			return
		}
		delete(n.cols, lru.esc)
		n.active.Add(-1)
	}
}

// drop removes c (when still held) and frees it.
func (n *nameColumns) drop(c *nameColumn) {
	n.mu.Lock()
	if n.cols[c.esc] == c {
		delete(n.cols, c.esc)
		n.active.Add(-1)
	}
	n.mu.Unlock()
	c.mu.Lock()
	c.release()
	c.mu.Unlock()
}

// build fills c from the project's l/ entries, then redoes from the store
// the entries written meanwhile, and makes it ready.
func (n *nameColumns) build(ctx context.Context, c *nameColumn) error {
	prefix := "l/" + c.esc + "/"
	var scratch []byte
	var bad error
	err := store.ScanRaw(ctx, n.st, prefix, "", false, func(k, v []byte) bool {
		scratch, bad = c.appendEntry(k[len(prefix):], v, scratch)
		if bad == nil && c.len()%65536 == 0 {
			if c.account(); c.size.Load() > n.budget {
				bad = errColumn
			}
		}
		return bad == nil
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == columnDropped {
		return errColumnGone
	}
	for suffix := range c.pending {
		if err := n.refreshLocked(ctx, c, suffix); err != nil {
			return err
		}
	}
	c.pending, c.state = nil, columnReady
	c.account()
	return nil
}

var errColumnGone = errors.New("kms: name column dropped during its build")

// refreshLocked makes c's entry at suffix what the store holds now. c.mu held.
func (n *nameColumns) refreshLocked(ctx context.Context, c *nameColumn, suffix string) error {
	kv, err := n.st.Get(ctx, "l/"+c.esc+"/"+suffix)
	if errors.Is(err, store.ErrNotFound) {
		return c.apply(suffix, nil, false)
	} else if err != nil {
		return err
	}
	return c.apply(suffix, kv.Value, true)
}

// touched refreshes the column entries of the l/ keys that ops (a
// committed transaction) wrote.
func (n *nameColumns) touched(ctx context.Context, ops []store.Op) {
	if n == nil || n.active.Load() == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx) // the write is done; its refresh must be too
	for _, op := range ops {
		if !strings.HasPrefix(op.Key, "l/") {
			continue
		}
		esc, suffix, ok := strings.Cut(op.Key[len("l/"):], "/")
		if !ok {
			continue
		}
		n.mu.Lock()
		c := n.cols[esc]
		n.mu.Unlock()
		if c == nil {
			continue
		}
		c.mu.Lock()
		var err error
		switch c.state {
		case columnBuilding:
			c.pending[suffix] = struct{}{}
		case columnReady:
			if err = n.refreshLocked(ctx, c, suffix); err != nil {
				c.release() // it may now differ from the store: not used again
			} else {
				c.account()
			}
		}
		c.mu.Unlock()
		if err != nil {
			n.drop(c)
		}
	}
}
