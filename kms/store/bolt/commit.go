package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"

	bbolt "go.etcd.io/bbolt"

	"github.com/keywarden/keywarden/kms/store"
)

// Group commit. Txn queues a request; one committer goroutine takes all that
// is queued, evaluates it in order against (overlay ∪ bbolt), appends the
// resolved writes of the batch to the WAL as one record (one fdatasync),
// puts them in the overlay and answers each request. While it syncs, new
// requests queue up and form the next batch, so the batch size follows the
// load with no added delay. A request that finds nobody committing is
// committed by its own caller (commitHere); commitMu keeps one batch at a
// time either way. The flusher (flush.go) applies the overlay to
// bbolt behind it.

// Request states. A request is taken by the committer or abandoned by its
// caller, never both, so a Txn that returns a context error wrote nothing.
const (
	pending int32 = iota
	taken
	abandoned
)

type request struct {
	cmps  []store.Cmp
	ops   []store.Op
	note  []byte
	lazy  bool // answered once applied, before the sync (lazy.go)
	state atomic.Int32
	done  chan error // buffered: the committer never blocks on a caller
}

// fillPercent is how full a page is left when bbolt splits it.
const fillPercent = 0.9

// Txn implements store.Store. It returns once the batch holding it is
// fsynced, or with a context error only if it was never applied.
func (s *Store) Txn(ctx context.Context, cmps []store.Cmp, ops []store.Op) error {
	return s.TxnNote(ctx, cmps, ops, nil)
}

// TxnNote implements store.Journal: note is in the same WAL record as the
// writes.
func (s *Store) TxnNote(ctx context.Context, cmps []store.Cmp, ops []store.Op, note []byte) error {
	return s.txn(ctx, &request{cmps: cmps, ops: ops, note: note})
}

func (s *Store) txn(ctx context.Context, r *request) error {
	if err := validate(r.cmps, r.ops); err != nil {
		return err
	}
	r.done = make(chan error, 1)
	if s.commitHere(ctx, r) {
		return <-r.done
	}
	if err := s.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(pending, abandoned) {
			return ctx.Err()
		}
		// Already in a batch: its outcome is decided, wait for it.
		return <-r.done
	}
}

func (s *Store) enqueue(ctx context.Context, r *request) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitHere commits r on the caller's goroutine when no batch is being
// committed or waits for the committer: a lone writer then pays no
// hand-off to the committer goroutine and back (two goroutine wake-ups on
// its latency). It takes what is queued along, as the committer would.
// False: the committer is busy, queue r. The order s.mu then commitMu is
// enqueue's (s.mu, then the committer), so Close cannot deadlock them.
func (s *Store) commitHere(ctx context.Context, r *request) bool {
	if s.committerBusy.Load() || len(s.queue) > 0 {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() || ctx.Err() != nil || !s.commitMu.TryLock() {
		return false // enqueue answers a closed store or a done context
	}
	defer s.commitMu.Unlock()
	r.state.Store(taken)
	s.hereBatch = s.fill(append(s.hereBatch[:0], r))
	s.commit(s.hereBatch)
	s.here.Add(1)
	clear(s.hereBatch)
	return true
}

// fill adds what is queued to batch, up to maxBatch, without waiting.
func (s *Store) fill(batch []*request) []*request {
	for len(batch) < s.maxBatch {
		select {
		case r, ok := <-s.queue:
			if !ok {
				return batch
			}
			batch = s.take(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// validate rejects what bbolt would refuse mid-batch, which would otherwise
// fail every other request of the batch.
func validate(cmps []store.Cmp, ops []store.Op) error {
	for _, c := range cmps {
		if err := validKey(c.Key); err != nil {
			return err
		}
		if c.Version < 0 {
			return fmt.Errorf("bolt: negative version %d in compare of %q", c.Version, c.Key)
		}
	}
	for _, op := range ops {
		if err := validKey(op.Key); err != nil {
			return err
		}
		if int64(len(op.Value))+8 > bbolt.MaxValueSize {
			return fmt.Errorf("bolt: value of %q too large (%d bytes)", op.Key, len(op.Value))
		}
	}
	return nil
}

func validKey(k string) error {
	switch {
	case k == "":
		return errors.New("bolt: empty key")
	case len(k) > bbolt.MaxKeySize:
		return fmt.Errorf("bolt: key too large (%d bytes, max %d)", len(k), bbolt.MaxKeySize)
	}
	return nil
}

// run is the committer: one batch at a time until Close closes the queue.
func (s *Store) run() {
	defer close(s.done)
	batch := make([]*request, 0, s.maxBatch)
	for r := range s.queue {
		s.committerBusy.Store(true) // callers queue behind r (commitHere)
		s.commitMu.Lock()
		batch = s.fill(s.take(batch[:0], r))
		if len(batch) > 0 {
			s.commit(batch)
		}
		s.commitMu.Unlock()
		s.committerBusy.Store(false)
		clear(batch) // drop the answered requests' values
	}
}

// take adds r to the batch unless its caller gave up first.
func (s *Store) take(batch []*request, r *request) []*request {
	if r.state.CompareAndSwap(pending, taken) {
		batch = append(batch, r)
	}
	return batch
}

// commit evaluates the batch in order, makes the writes of the requests
// whose compares hold durable in one WAL record, and answers. A failed
// compare fails only its own request; a failed WAL write fails the whole
// batch, and nothing of it is applied. Lazy requests go first, as a record
// of their own that is written but not synced (lazy.go): they are answered
// before the others' sync, which then covers them too.
func (s *Store) commit(batch []*request) {
	slices.SortStableFunc(batch, func(a, b *request) int { return boolOrder(b.lazy) - boolOrder(a.lazy) })
	results := make([]error, len(batch))
	txns, idx, err := s.resolve(batch, results)
	if err != nil { // nothing was written: every request fails, conflicts too
		idx = make([]int, len(batch))
		for i := range idx {
			idx[i] = i
		}
	}
	k := 0 // txns[:k] are the lazy ones
	for k < len(txns) && batch[idx[k]].lazy {
		k++
	}
	answered := 0
	if err == nil && k > 0 {
		if err = s.durable(txns[:k], false); err == nil {
			for answered < len(batch) && batch[answered].lazy {
				batch[answered].done <- results[answered]
				answered++
			}
		}
	}
	fail := idx // the durable ones resolved against the lazy writes: all fail with them
	if err == nil && len(txns) > k {
		err, fail = s.durable(txns[k:], true), idx[k:]
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			err = fmt.Errorf("%w: %w", store.ErrFull, err)
		}
		for _, i := range fail {
			results[i] = err
		}
	}
	s.txns.Add(uint64(len(batch)))
	for i, r := range batch[answered:] {
		r.done <- results[answered+i]
	}
}

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resolve evaluates each request's compares against (overlay ∪ bbolt ∪
// the batch so far) and turns its ops into final values. It returns the
// transactions to log, numbered from the WAL's next LSN, and which
// requests they are.
func (s *Store) resolve(batch []*request, results []error) ([]walTxn, []int, error) {
	s.waitRoom()
	// The read lock is held throughout: the flusher removes an entry only
	// after bbolt has it, but maybe after tx began. Nothing below may take
	// it again (a waiting flusher would deadlock a second RLock).
	s.ov.mu.RLock()
	defer s.ov.mu.RUnlock()
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, nil, closedErr(err)
	}
	defer tx.Rollback()
	b := tx.Bucket(dataBucket)
	pending := map[string][]byte{} // this batch's writes so far; nil: deleted
	cur := func(key string) []byte {
		if raw, ok := pending[key]; ok {
			return raw
		}
		if e, ok := s.ov.m[key]; ok {
			return e.raw
		}
		return b.Get([]byte(key))
	}
	var txns []walTxn
	var idx []int
	s.wal.mu.Lock()
	lsn, nsn := s.wal.next, s.wal.nextN
	s.wal.mu.Unlock()
	for i, r := range batch {
		ok, err := holds(cur, r.cmps)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			results[i] = store.ErrConflict
			continue
		}
		t := walTxn{lsn: lsn, note: r.note}
		if r.note != nil {
			t.nsn = nsn
			nsn++
		}
		for _, op := range r.ops {
			raw, err := resolveOp(cur(op.Key), op)
			if err != nil {
				return nil, nil, err
			}
			pending[op.Key] = raw
			t.writes = append(t.writes, write{key: op.Key, raw: raw})
		}
		txns = append(txns, t)
		idx = append(idx, i)
		lsn++
	}
	return txns, idx, nil
}

// durable logs txns as one WAL record (synced when sync is set), then
// publishes them: overlay, follower (in LSN order, only once synced: see
// lazy.go), before any caller is answered.
func (s *Store) durable(txns []walTxn, sync bool) error {
	notes, lastN := 0, uint64(0)
	for _, t := range txns {
		if t.note != nil {
			notes, lastN = notes+1, t.nsn
		}
	}
	s.buf = encodeRecord(s.buf[:0], txns)
	if err := s.wal.append(s.buf, len(txns), notes, sync); err != nil {
		return err
	}
	if cap(s.buf) > 1<<20 {
		s.buf = nil // one big batch should not pin its buffer
	}
	s.commits.Add(1)
	s.hand(txns, sync)
	s.ov.mu.Lock()
	for _, t := range txns {
		for _, w := range t.writes {
			if old, ok := s.ov.m[w.key]; ok {
				s.ov.bytes -= entrySize(w.key, old.raw)
			}
			s.ov.m[w.key] = ovEntry{lsn: t.lsn, raw: w.raw}
			s.ov.bytes += entrySize(w.key, w.raw)
		}
	}
	s.ov.last = txns[len(txns)-1].lsn
	if notes > 0 {
		s.ov.lastNote = lastN
	}
	over := s.ov.bytes > s.flushBytes
	s.ov.mu.Unlock()
	if over {
		s.kickFlush()
	}
	return nil
}

// holds reports whether every compare matches the current state.
func holds(cur func(string) []byte, cmps []store.Cmp) (bool, error) {
	for _, c := range cmps {
		v, err := version(c.Key, cur(c.Key))
		if err != nil {
			return false, err
		}
		if v != c.Version {
			return false, nil
		}
	}
	return true, nil
}

func version(key string, raw []byte) (int64, error) {
	if raw == nil {
		return 0, nil
	}
	if len(raw) < 8 {
		return 0, fmt.Errorf("bolt: corrupt entry %q: %d bytes", key, len(raw))
	}
	return int64(binary.BigEndian.Uint64(raw[:8])), nil
}

// resolveOp returns the raw value op leaves at its key given the current
// one (nil: absent): nil for a delete, a counter's new total for an Add.
func resolveOp(raw []byte, op store.Op) ([]byte, error) {
	if op.Delete {
		return nil, nil
	}
	v, err := version(op.Key, raw)
	if err != nil {
		return nil, err
	}
	value := op.Value
	if op.Add != 0 {
		// The committer resolves transactions one after another, so a
		// read-modify-write here is atomic.
		var cur int64
		if raw != nil {
			cur = store.CounterValue(raw[8:])
		}
		value = store.EncodeCounter(cur + op.Add)
	}
	buf := make([]byte, 8, 8+len(value))
	binary.BigEndian.PutUint64(buf, uint64(v+1))
	return append(buf, value...), nil
}
