package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// Journal records. With a store that journals (store.Journal), a change's
// record is made durable in the store's own WAL sync, and the store hands
// it here afterwards with its LSN: Append queues it (never dropping it),
// the writer writes it in order with the LSN as the line's "j" member,
// and its fsync is on nobody's critical path. Before the store drops WAL
// records, Sync must have made their lines durable; at start, the notes
// left in the WAL above LastJournal are appended again (kms.New). Every
// file's header carries the last j written before it, so LastJournal
// reads backwards no further than the current file's header.

var _ kms.JournalAuditor = (*Log)(nil)

// Append queues r, the record of the change the store committed as lsn.
// It waits as long as the queue is full; a record that fails to be written
// is retried, not dropped. After Close it is left to the WAL: Sync fails
// from then on, so the store keeps the note for the next start.
func (l *Log) Append(r kms.AuditRecord, lsn uint64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	// No wake: an idle writer takes it at once, a busy one within its
	// pacing (GroupInterval). Nobody waits on it (it is durable in the
	// WAL), and a wake per change cost one writer round (a goroutine wake
	// and a write) per create at one client.
	q := queued{rec: r, j: lsn}
	l.ovMu.Lock()
	defer l.ovMu.Unlock()
	if len(l.overflow) == 0 {
		select {
		case l.queue <- q:
			return
		default:
		}
	}
	// The queue is full: the writer is stuck or far behind. The record
	// waits here, after those queued, rather than hold up the store's
	// committer (and with it every change and first read); JournalErr
	// stops new changes until the writer has caught up.
	l.overflow = append(l.overflow, q)
	l.behind.Store(int64(len(l.overflow)))
}

// takeOverflow passes up to n overflowed records to take, oldest first,
// and returns how many (writer; called with the queue drained, so they
// follow every journal record queued before them).
func (l *Log) takeOverflow(take func(queued), n int) int {
	if l.behind.Load() == 0 { // the usual case: no lock per group
		return 0
	}
	l.ovMu.Lock()
	defer l.ovMu.Unlock()
	n = min(n, len(l.overflow))
	for _, q := range l.overflow[:n] {
		take(q)
	}
	clear(l.overflow[:n])
	l.overflow = l.overflow[n:]
	if len(l.overflow) == 0 {
		l.overflow = nil
	}
	l.behind.Store(int64(len(l.overflow)))
	return n
}

// stalled is how long the writer's current group has gone unanswered,
// 0 when it is idle or within StallAfter.
func (l *Log) stalled() time.Duration {
	since := l.busySince.Load()
	if since == 0 {
		return 0
	}
	if d := time.Since(time.Unix(0, since)); d > l.stallAfter {
		return d.Truncate(time.Millisecond)
	}
	return 0
}

// LastJournal is the highest j on the trail when the log was opened.
func (l *Log) LastJournal() uint64 { return l.openJ }

// JournalSync is Sync for the journal's checkpoint: it fails after Close
// and while a journal record waits to be written again.
func (l *Log) JournalSync(ctx context.Context) error {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return ErrUnavailable
	}
	if err := l.Sync(ctx); err != nil {
		return err
	}
	if l.retrying.Load() {
		return fmt.Errorf("%w: journal records wait to be written again", ErrUnavailable)
	}
	if l.journalBroken.Load() {
		return fmt.Errorf("%w: an fsync of journal records failed; restart to recover them from the store", ErrUnavailable)
	}
	return nil
}

// JournalErr is the write failure journal records wait on, nil when none do.
//
// A trail that hangs counts too: a write or fsync unanswered for
// StallAfter (a hung disk or NFS server), or records waiting for room in
// the queue. The changes made meanwhile would pile up unrecorded, so none
// is made until the writer answers again.
func (l *Log) JournalErr() error {
	if l.journalBroken.Load() {
		return errors.New("audit: an fsync of journal records failed; restart to recover them from the store")
	}
	if d := l.stalled(); d > 0 {
		return fmt.Errorf("%w: a write to the audit trail has not completed for %s", ErrUnavailable, d)
	}
	if n := l.behind.Load(); n > 0 {
		return fmt.Errorf("%w: %d audit records wait for room in the writer's queue", ErrUnavailable, n)
	}
	if !l.retrying.Load() {
		return nil
	}
	if err := l.Err(); err != nil {
		return err
	}
	return ErrUnavailable
}

// lineJ returns a line's j member, 0 when it has none. j comes right
// after seq, and a string member's quotes are escaped, so a line has
// `,"j":` there only as that member.
func lineJ(line []byte) uint64 {
	rest, ok := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !ok {
		return 0
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	rest, ok = bytes.CutPrefix(rest[i:], []byte(`,"j":`))
	if !ok {
		return 0
	}
	i = 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	j, _ := strconv.ParseUint(string(rest[:i]), 10, 64)
	return j
}

// lastJ reads f's first size bytes backwards for the last line with a j.
func lastJ(f *os.File, size int64) (uint64, error) {
	const chunk = 64 << 10
	var tail []byte // an incomplete line from the chunk after
	for end := size; end > 0; {
		start := max(0, end-chunk)
		buf := make([]byte, end-start, end-start+int64(len(tail)))
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		buf = append(buf, tail...)
		for {
			i := bytes.LastIndexByte(buf, '\n')
			if i < 0 && start > 0 {
				break
			}
			line := buf[i+1:]
			if j := lineJ(line); j > 0 {
				return j, nil
			}
			if i < 0 {
				break
			}
			buf = buf[:i]
		}
		tail = bytes.Clone(buf)
		end = start
	}
	return 0, nil
}

// journalOf finds the last j of the set: in the current file, or (when it
// holds none, not even in its header) the newest rotated one.
func (l *Log) journalOf() error {
	if l.size > 0 { // it has its header: the search ends there
		var err error
		l.openJ, err = lastJ(l.f, l.size)
		return err
	}
	set, err := listRotated(l.path)
	if err != nil || len(set) == 0 {
		return err
	}
	f, err := os.Open(set[len(set)-1].path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	l.openJ, err = lastJ(f, fi.Size())
	return err
}
