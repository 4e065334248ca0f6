package bolt

import (
	"context"

	"github.com/keywarden/keywarden/kms/store"
)

// Lazy transactions (store.LazyJournal). The committer writes a batch's
// lazy requests as a record of their own with write(2) and no sync, puts
// them in the overlay and answers them; the batch's other requests follow
// as the next record, whose fdatasync covers both (a new segment syncs the
// old file first). With no such write behind it, the flusher syncs the WAL
// before it applies the overlay to bbolt, so a lazy write is durable within
// FlushInterval. A kill of the process keeps it (the kernel has the bytes);
// only a machine crash before that sync loses it.
//
// A lazy record's notes are handed to the follower only once a sync has
// covered the record: the follower (the audit trail) never holds a note
// of a change that a machine crash could still take back. A note written
// but not yet handed on is in the WAL file, where Open finds it.

var _ store.LazyJournal = (*Store)(nil)

// TxnNoteLazy implements store.LazyJournal.
func (s *Store) TxnNoteLazy(ctx context.Context, cmps []store.Cmp, ops []store.Op, note []byte) error {
	return s.txn(ctx, &request{cmps: cmps, ops: ops, note: note, lazy: true})
}

// hand queues the notes of txns, just written, for the follower, and hands
// on every queued note when synced: a sync covers all records before it.
func (s *Store) hand(txns []walTxn, synced bool) {
	s.handMu.Lock()
	defer s.handMu.Unlock()
	for _, t := range txns {
		if t.note != nil {
			s.unsynced = append(s.unsynced, store.Note{Seq: t.nsn, Data: t.note})
		}
	}
	if synced {
		s.handOn()
	}
}

// handOn gives the queued notes to the follower, in order (handMu held).
func (s *Store) handOn() {
	if len(s.unsynced) == 0 {
		return
	}
	s.followMu.Lock()
	follow := s.follow
	s.followMu.Unlock()
	if follow != nil {
		for _, n := range s.unsynced {
			follow(n.Seq, n.Data)
		}
	}
	clear(s.unsynced)
	s.unsynced = s.unsynced[:0]
}

// syncLazy makes the lazy records written so far durable and hands on
// their notes; the flusher calls it before bbolt takes their writes.
func (s *Store) syncLazy() error {
	s.handMu.Lock()
	defer s.handMu.Unlock()
	if err := s.wal.sync(); err != nil {
		return err
	}
	s.handOn()
	return nil
}
