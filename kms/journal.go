package kms

import (
	"context"
	"fmt"
	"time"

	"github.com/keywarden/keywarden/kms/store"
)

// With a store that journals (store/bolt's WAL) and an auditor that can
// follow it (audit.Log), a change's audit record is the note of its own
// transaction: durable in the same sync as the writes, and only if they
// commit. The store hands each note to the auditor in LSN order right
// after the sync; before it drops WAL records it has the auditor sync.
// At start, the notes still in the WAL above the trail's last LSN are
// appended (a crash came between the WAL sync and the audit write).

// journalSyncWait bounds the audit sync at start.
const journalSyncWait = 30 * time.Second

// storeWriteWait bounds how long a change waits for the journaling store
// to take it (commit.go).
const storeWriteWait = 10 * time.Second

// journalRetryWait bounds a change's wait for a failing trail to recover.
const journalRetryWait = 5 * time.Second

// followJournal wires store and auditor together, once, after recovering
// the notes the trail lacks. Without both, commit keeps the audit-first
// path.
func (s *Service) followJournal() error {
	j, ok := s.st.(store.Journal)
	if !ok {
		return nil
	}
	ja, ok := s.audit.(JournalAuditor)
	if !ok {
		return nil
	}
	last, n := ja.LastJournal(), 0
	seen := last
	for _, note := range j.Notes() {
		if note.Seq <= last {
			continue
		}
		rec, err := decodeNote(note.Data)
		if err != nil {
			return fmt.Errorf("kms: journal note %d: %w", note.Seq, err)
		}
		ja.Append(rec, note.Seq)
		n, seen = n+1, note.Seq
	}
	ctx, cancel := context.WithTimeout(context.Background(), journalSyncWait)
	defer cancel()
	if err := ja.JournalSync(ctx); err != nil {
		return fmt.Errorf("kms: recovering %d audit records from the store's journal: %w", n, err)
	}
	if n > 0 {
		s.log.Warn("kms: audit records recovered from the store's journal", "records", n)
	}
	j.Follow(seen, func(lsn uint64, note []byte) {
		rec, err := decodeNote(note)
		if err != nil { // our own encoding: cannot happen
			s.log.Error("kms: undecodable journal note", "lsn", lsn, "error", err)
			return
		}
		ja.Append(rec, lsn)
	}, func() error {
		if err := ja.JournalErr(); err != nil {
			return err // failing or hung: keep the WAL, retry at the next checkpoint
		}
		// Short: a failed checkpoint only keeps the WAL a while longer,
		// and a long one would hold a shutdown on a hung audit disk.
		ctx, cancel := context.WithTimeout(context.Background(), journalRetryWait)
		defer cancel()
		return ja.JournalSync(ctx)
	})
	s.journal, s.jaudit = j, ja
	return nil
}
