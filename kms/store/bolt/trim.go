package bolt

import (
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// The map trimmer bounds the bbolt file's pages in the process's RSS.
// bbolt maps the file read-only and shared; every page a read touches stays
// mapped, with its neighbours: a read fault maps the page's whole
// page-cache folio (~100 KiB per fault measured here), so one scan of a
// million summaries maps the whole ~1 GB file. Those are clean page-cache
// pages, but they count in RSS. madvise(MADV_DONTNEED) on the mapping drops
// the process's references only: the page cache keeps the data and the
// next read faults the same bytes back in (a minor fault, but a costly
// one: 40-400 µs on the benchmark VM, since it maps the whole folio).
//
// A trim runs inside a read transaction, which holds bbolt's mmap lock
// shared: bbolt remaps (on growth) only under that lock held exclusively,
// so the range trimmed is always bbolt's live mapping, never memory that a
// remap handed to something else.
//
// When: the trimmer goroutine samples the file-backed RSS (/proc/self/statm,
// one pread) every trimEvery; a long walk samples it every 4096 entries, as
// it checks its context, and every 16th Get or walk start samples it too:
// reads map pages far faster than a tick. The share of the file-backed RSS
// that is not bolt's (the binary's text) is the least ever sampled.

// The trimmer is off unless a budget is set (store.map_budget). Measured
// at a million secrets on the benchmark VM (docs/BENCHMARKS.md, Session 7,
// end): a 192 MiB budget kept the whole RSS under 512 MiB, but cut
// payload GETs to 20-35% of the small store's rate (55-75% untrimmed) and
// a mid-offset sort=name list from 22 ms to 125 ms p99, for memory that is
// the kernel's page cache either way: clean, reclaimable, and charged to
// a cgroup whether or not it is mapped. Only an RSS alarm sees the
// difference.

const trimEvery = 25 * time.Millisecond

type trimmer struct {
	budget int64 // bytes; 0: off
	// trimMu: one trim at a time; a reader that finds the budget passed
	// while a trim runs waits for it instead of faulting pages back in
	// meanwhile (a trim of a large mapping takes milliseconds).
	trimMu sync.Mutex
	trims  atomic.Uint64
	reads  atomic.Uint64
	mu     sync.Mutex // guards base and the statm reader
	// base is the least file-backed RSS sampled: the binary's text and
	// other mappings the trimmer cannot drop. (Sampled just after a trim
	// it can be far above that: readers fault pages back in while the
	// madvise of a large mapping runs.)
	base int64
	rd   statmReader
	stop chan struct{}
	done chan struct{}
}

func newTrimmer(budget int64) *trimmer {
	t := &trimmer{budget: budget, stop: make(chan struct{}), done: make(chan struct{})}
	if budget <= 0 || !t.rd.open() {
		t.budget = 0
	}
	t.base = t.rd.fileRSS()
	return t
}

// over tells whether the file pages mapped exceed the budget.
func (t *trimmer) over() bool {
	if t.budget == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.rd.fileRSS()
	if n <= 0 {
		return false
	}
	t.base = min(t.base, n)
	return n > t.base+t.budget
}

// run samples and trims until stop.
func (s *Store) trimLoop() {
	t := s.trim
	defer close(t.done)
	if t.budget == 0 {
		return
	}
	tick := time.NewTicker(trimEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		if t.over() {
			tx, err := s.db.Begin(false)
			if err != nil {
				continue // closing
			}
			s.trimIn(tx)
			tx.Rollback()
		}
	}
}

// maybeTrim trims, inside tx, when over the budget (walks call it).
func (s *Store) maybeTrim(tx *bbolt.Tx) {
	if s.trim.over() {
		s.trimIn(tx)
	}
}

// trimIn drops the mapping's pages from RSS when still over the budget;
// tx (open) keeps the mapping in place.
func (s *Store) trimIn(tx *bbolt.Tx) {
	t := s.trim
	t.trimMu.Lock()
	defer t.trimMu.Unlock()
	if !t.over() { // trimmed by whoever held trimMu before
		return
	}
	if dropMapped(s.db.Info().Data, tx.Size()) == nil {
		t.trims.Add(1)
	}
}

// readTrim is Get's check: every 16th read samples (a fault can map a
// large page-cache folio, ~100 KiB; a sample costs ~4 µs).
func (s *Store) readTrim(tx *bbolt.Tx) {
	if s.trim.budget != 0 && s.trim.reads.Add(1)%16 == 0 {
		s.maybeTrim(tx)
	}
}

// Trims counts the mapping trims since Open.
func (s *Store) Trims() uint64 { return s.trim.trims.Load() }

func (t *trimmer) close() {
	close(t.stop)
	<-t.done
	t.rd.close()
}
