package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keywarden/keywarden/kms/store"
)

// The flusher applies the overlay to bbolt behind the WAL: every
// FlushInterval, or sooner when the overlay passes its soft bound, it takes
// the overlay as of its last LSN L, writes it to bbolt in one synced Update
// together with applied = L, removes the entries still at LSN <= L from the
// overlay, and drops the WAL segments wholly <= L (after the checkpoint
// hook when they hold notes). The brief asked for a "cut" handshake with
// the committer; the overlay's lock gives the same: the committer adds a
// whole batch under it, so a snapshot taken under it ends between batches.

var (
	appliedKey = []byte("applied")
	notesKey   = []byte("notes") // the last note number bbolt's applied LSN covers
)

func (s *Store) flusher() {
	defer close(s.flushDone)
	t := time.NewTicker(s.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-t.C:
		case <-s.flushKick:
		}
		s.flushMu.Lock()
		s.flush()
		s.flushMu.Unlock()
	}
}

// kickFlush asks the flusher for a flush now, without waiting.
func (s *Store) kickFlush() {
	select {
	case s.flushKick <- struct{}{}:
	default:
	}
}

// waitRoom holds the committer while the overlay is past its hard bound
// (bbolt is slower than the WAL), so memory stays bounded. A flusher that
// keeps failing (a full disk) lets it through: the WAL still takes writes
// or refuses them itself.
func (s *Store) waitRoom() {
	s.ov.mu.Lock()
	defer s.ov.mu.Unlock()
	for s.ov.bytes > s.hardBytes && s.flushErr == nil {
		s.kickFlush()
		s.ov.full.Wait()
	}
}

// flush applies the overlay to bbolt and checkpoints the WAL. It runs on
// the flusher (or Close, once the flusher has stopped).
func (s *Store) flush() error {
	s.ov.mu.RLock()
	last, lastNote := s.ov.last, s.ov.lastNote
	snap := make([]kvRaw, 0, len(s.ov.m))
	for k, e := range s.ov.m {
		snap = append(snap, kvRaw{k, e.raw})
	}
	s.ov.mu.RUnlock()
	// bbolt must not hold a lazy write whose WAL record (and note) a
	// machine crash could still lose.
	if err := s.syncLazy(); err != nil {
		s.ov.mu.Lock()
		s.flushErr = err
		s.ov.full.Broadcast()
		s.ov.mu.Unlock()
		return err
	}
	if len(snap) > 0 || last > s.applied {
		// Sorted puts: bbolt fills pages best in key order.
		slices.SortFunc(snap, func(a, b kvRaw) int { return strings.Compare(a.key, b.key) })
		err := s.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(dataBucket)
			b.FillPercent = fillPercent
			if err := applyWrites(b, snap); err != nil {
				return err
			}
			return putApplied(tx, last, lastNote)
		})
		s.ov.mu.Lock()
		if err != nil {
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
				err = fmt.Errorf("%w: %w", store.ErrFull, err)
			}
			s.flushErr = err
			s.ov.full.Broadcast()
			s.ov.mu.Unlock()
			return err
		}
		for _, kv := range snap {
			if e, ok := s.ov.m[kv.key]; ok && e.lsn <= last {
				delete(s.ov.m, kv.key)
				s.ov.bytes -= entrySize(kv.key, e.raw)
			}
		}
		s.flushErr = nil
		s.ov.full.Broadcast()
		s.ov.mu.Unlock()
		s.applied = last
		s.flushes.Add(1)
	}
	return s.checkpoint(s.applied)
}

func applyWrites(b *bbolt.Bucket, ws []kvRaw) error {
	for _, w := range ws {
		var err error
		if w.raw == nil {
			err = b.Delete([]byte(w.key))
		} else {
			err = b.Put([]byte(w.key), w.raw)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkpoint drops the WAL segments whose records bbolt holds (all <=
// applied). Segments with notes go only once the checkpoint hook has made
// them durable elsewhere; without a hook they stay.
func (s *Store) checkpoint(applied uint64) error {
	segs := s.wal.droppable(applied)
	n := 0
	for _, seg := range segs {
		if seg.notes {
			break
		}
		n++
	}
	if n < len(segs) {
		s.followMu.Lock()
		hook := s.checkpointHook
		s.followMu.Unlock()
		if hook != nil && hook() == nil {
			n = len(segs)
		}
	}
	if n == 0 {
		return nil
	}
	return s.wal.drop(n)
}

// Notes implements store.Journal: the notes found in the WAL at Open (none
// once a follower is registered).
func (s *Store) Notes() []store.Note {
	s.followMu.Lock()
	defer s.followMu.Unlock()
	return slices.Clone(s.notes)
}

// Follow implements store.Journal.
func (s *Store) Follow(after uint64, follow func(seq uint64, note []byte), checkpoint func() error) {
	s.followMu.Lock()
	defer s.followMu.Unlock()
	s.follow, s.checkpointHook = follow, checkpoint
	s.notes = nil // the follower has what it needed of them
	s.wal.mu.Lock()
	s.wal.nextN = max(s.wal.nextN, after+1)
	s.wal.mu.Unlock()
}

// replay applies the WAL's transactions above bbolt's applied LSN, in
// order, and records the new applied LSN: idempotent, the values are final.
func replay(db *bbolt.DB, applied, notes uint64, txns []walTxn) (uint64, uint64, error) {
	var ws []kvRaw
	last := applied
	for _, t := range txns {
		if t.lsn <= applied {
			continue
		}
		for _, w := range t.writes {
			ws = append(ws, kvRaw(w))
		}
		last = t.lsn
		if t.note != nil {
			notes = t.nsn
		}
	}
	if last == applied {
		return applied, notes, nil
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := applyWrites(tx.Bucket(dataBucket), ws); err != nil {
			return err
		}
		return putApplied(tx, last, notes)
	})
	return last, notes, err
}

func putApplied(tx *bbolt.Tx, lsn, notes uint64) error {
	m := tx.Bucket(metaBucket)
	if err := m.Put(appliedKey, binary.BigEndian.AppendUint64(nil, lsn)); err != nil {
		return err
	}
	return m.Put(notesKey, binary.BigEndian.AppendUint64(nil, notes))
}

// readApplied returns the LSN bbolt holds everything up to and the last
// note number among those (0: none).
func readApplied(db *bbolt.DB) (lsn, notes uint64, err error) {
	err = db.View(func(tx *bbolt.Tx) error {
		for _, kv := range []struct {
			key []byte
			n   *uint64
		}{{appliedKey, &lsn}, {notesKey, &notes}} {
			v := tx.Bucket(metaBucket).Get(kv.key)
			switch len(v) {
			case 0:
			case 8:
				*kv.n = binary.BigEndian.Uint64(v)
			default:
				return fmt.Errorf("unreadable %s %x", kv.key, v)
			}
		}
		return nil
	})
	return lsn, notes, err
}

// retireWAL, at Close, drops the current segment too once bbolt holds all
// of it and it has no notes, so the next Open does not read a preallocated
// segment it would only skip.
func (s *Store) retireWAL() error {
	s.wal.mu.Lock()
	n := len(s.wal.segs)
	all := s.wal.next-1 <= s.applied
	notes := n > 0 && s.wal.segs[n-1].notes
	s.wal.mu.Unlock()
	if !all || n != 1 { // older segments are still kept for their notes
		return nil
	}
	if notes {
		// Kept for its notes (the next Open hands on any the trail
		// lacks), but cut to its records: its preallocated rest would
		// be read for nothing.
		return s.wal.trim()
	}
	if err := s.wal.close(); err != nil {
		return err
	}
	return s.wal.drop(n)
}
