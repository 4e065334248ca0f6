package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	bbolt "go.etcd.io/bbolt"

	"github.com/keywarden/keywarden/kms/store"
)

// Group commit. Txn queues a request; one committer goroutine takes all that
// is queued, applies it in order in one bbolt write tx, commits (one fsync)
// and answers each request. While it fsyncs, new requests queue up and form
// the next batch, so the batch size follows the load with no added delay.

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
	state atomic.Int32
	done  chan error // buffered: the committer never blocks on a caller
}

// fillPercent is how full a page is left when bbolt splits it.
const fillPercent = 0.9

// errNoWrites rolls back a batch that changed nothing: no fsync needed.
var errNoWrites = errors.New("no writes")

// Txn implements store.Store. It returns once the batch holding it is
// fsynced, or with a context error only if it was never applied.
func (s *Store) Txn(ctx context.Context, cmps []store.Cmp, ops []store.Op) error {
	if err := validate(cmps, ops); err != nil {
		return err
	}
	r := &request{cmps: cmps, ops: ops, done: make(chan error, 1)}
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
		batch = s.take(batch[:0], r)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = s.take(batch, r)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			s.commit(batch)
		}
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

// commit applies the batch in order in one write tx. A failed compare fails
// only its own request; an error from bbolt fails the whole batch.
func (s *Store) commit(batch []*request) {
	results := make([]error, len(batch))
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(dataBucket)
		// New keys mostly arrive in order (UUIDv7 ids, list index keys by
		// creation time), so a split page is left nearly full instead of
		// half: bbolt's advice for append-mostly buckets.
		b.FillPercent = fillPercent
		wrote := false
		for i, r := range batch {
			ok, err := holds(b, r.cmps)
			if err != nil {
				return err
			}
			if !ok {
				results[i] = store.ErrConflict
				continue
			}
			for _, op := range r.ops {
				if err := apply(b, op); err != nil {
					return err
				}
				wrote = true
			}
		}
		if !wrote {
			return errNoWrites
		}
		return nil
	})
	switch {
	case err == nil:
		s.commits.Add(1)
	case errors.Is(err, errNoWrites):
		// Rolled back, nothing to make durable; results stand.
	default:
		// bbolt rolled the tx back (freelist included) and the file
		// still holds the last commit, so the next batch can succeed.
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			err = fmt.Errorf("%w: %w", store.ErrFull, err)
		}
		for i := range results {
			results[i] = err
		}
	}
	s.txns.Add(uint64(len(batch)))
	for i, r := range batch {
		r.done <- results[i]
	}
}

// holds reports whether every compare matches the current state, which
// includes the writes of earlier requests in the same batch.
func holds(b *bbolt.Bucket, cmps []store.Cmp) (bool, error) {
	for _, c := range cmps {
		v, err := version(b, c.Key)
		if err != nil {
			return false, err
		}
		if v != c.Version {
			return false, nil
		}
	}
	return true, nil
}

func version(b *bbolt.Bucket, key string) (int64, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return 0, nil
	}
	if len(raw) < 8 {
		return 0, fmt.Errorf("bolt: corrupt entry %q: %d bytes", key, len(raw))
	}
	return int64(binary.BigEndian.Uint64(raw[:8])), nil
}

func apply(b *bbolt.Bucket, op store.Op) error {
	if op.Delete {
		return b.Delete([]byte(op.Key))
	}
	v, err := version(b, op.Key)
	if err != nil {
		return err
	}
	value := op.Value
	if op.Add != 0 {
		// The committer applies transactions one after another, so a
		// read-modify-write here is atomic.
		var cur int64
		if raw := b.Get([]byte(op.Key)); raw != nil {
			cur = store.CounterValue(raw[8:])
		}
		value = store.EncodeCounter(cur + op.Add)
	}
	buf := make([]byte, 8, 8+len(value))
	binary.BigEndian.PutUint64(buf, uint64(v+1))
	return b.Put([]byte(op.Key), append(buf, value...))
}
