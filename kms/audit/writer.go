package audit

import (
	"fmt"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// run is the writer: one group at a time until Close.
func (l *Log) run() {
	defer close(l.done)
	entries := make([]Entry, 0, l.batch+1)
	var dones []chan error // Commit callers of the batch being written
	take := func(q queued) {
		e := entry(q.rec)
		e.J = q.j
		entries = append(entries, e)
		if q.done != nil {
			dones = append(dones, q.done)
		}
	}
	write := func() error {
		if len(l.retry) > 0 { // journal records that failed go first
			entries = append(l.retry, entries...)
			l.retry = nil
		}
		l.mustSync = len(dones) > 0
		err := l.writeBatch(entries)
		l.retrying.Store(len(l.retry) > 0)
		for _, d := range dones {
			d <- err
		}
		dones = dones[:0]
		return err
	}
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	// bestSync fires when best-effort records have waited bestEffortSyncEvery
	// for an fsync and no group came to do it.
	bestSync := time.NewTimer(time.Hour)
	bestSync.Stop()
	var bestSyncC <-chan time.Time
	var carried chan error // a Sync that arrived while pacing
	for {
		var waiter chan error
		if carried != nil {
			waiter, carried = carried, nil
			entries = entries[:0]
		} else if l.behind.Load() > 0 {
			entries = entries[:0] // overflowed records wait: no blocking receive
		} else {
			select {
			case q, ok := <-l.queue:
				if !ok {
					for l.behind.Load() > 0 { // Appended before Close
						entries = entries[:0]
						l.takeOverflow(take, l.batch)
						write()
					}
					l.flushDropped()
					if l.dirty() && l.syncFile() != nil {
						return
					}
					if l.headDirty {
						l.writeHead()
					}
					return
				}
				entries = entries[:0]
				take(q)
			case waiter = <-l.syncReq:
				entries = entries[:0]
			case <-bestSyncC:
				bestSyncC = nil
				if wait := bestEffortSyncEvery - time.Since(l.syncedAt); l.unsyncedBest > 0 && wait > 0 {
					bestSync.Reset(wait) // a group synced since the timer was set
					bestSyncC = bestSync.C
					continue
				}
				l.busySince.Store(time.Now().UnixNano())
				if l.unsyncedBest > 0 && l.syncFile() == nil && l.headDirty && time.Since(l.headAt) >= headInterval {
					l.writeHead()
				}
				l.busySince.Store(0)
				continue
			}
		}
		start := time.Now()
		l.busySince.Store(start.UnixNano())
	fill:
		for len(entries) < l.batch {
			select {
			case q, ok := <-l.queue:
				if !ok {
					l.takeOverflow(take, l.batch-len(entries))
					break fill
				}
				take(q)
			default:
				l.takeOverflow(take, l.batch-len(entries))
				break fill
			}
		}
		if n := l.dropped.Swap(0); n > 0 {
			entries = append(entries, droppedEntry(n))
		}
		var err error
		if len(entries) > 0 || len(l.retry) > 0 {
			err = write()
		}
		if waiter != nil {
			// Everything queued before Sync was called must be on disk.
			for err == nil && (len(l.queue) > 0 || l.behind.Load() > 0) {
				entries = entries[:0]
				for len(entries) < l.batch && len(l.queue) > 0 {
					q, ok := <-l.queue
					if !ok {
						break
					}
					take(q)
				}
				if len(l.queue) == 0 {
					l.takeOverflow(take, l.batch-len(entries))
				}
				if len(entries) > 0 {
					err = write()
				}
			}
			if err == nil && l.dirty() {
				err = l.syncFile()
			}
			if err == nil && l.headDirty {
				l.writeHead()
			}
			l.busySince.Store(0)
			waiter <- err
			continue
		}
		l.busySince.Store(0)
		if l.unsyncedBest > 0 && bestSyncC == nil {
			bestSync.Reset(max(0, bestEffortSyncEvery-time.Since(l.syncedAt)))
			bestSyncC = bestSync.C
		}
		// Pace the groups; a Sync or a waiting Commit cuts the pause short.
		if d := l.interval - time.Since(start); d > 0 {
			pace.Reset(d)
			select {
			case <-pace.C:
			case carried = <-l.syncReq:
				pace.Stop()
			case <-l.wake:
				pace.Stop()
			}
		}
	}
}

func (l *Log) flushDropped() {
	if n := l.dropped.Swap(0); n > 0 {
		l.writeBatch([]Entry{droppedEntry(n)})
	}
}

func entry(r kms.AuditRecord) Entry {
	return Entry{
		Time: r.Time.UTC(), User: r.User, Project: r.Project, Roles: r.Roles, Source: r.Source,
		Protocol: r.Protocol, Remote: r.Remote, Action: r.Action,
		SecretID: r.SecretID, Outcome: r.Outcome, RequestID: r.RequestID, Detail: r.Detail,
	}
}

func droppedEntry(n uint64) Entry {
	return Entry{Time: time.Now().UTC(), Action: "audit_dropped", Outcome: "error",
		Detail: fmt.Sprintf("%d records were dropped: the audit queue was full or a write failed", n), stands: n}
}

// writeBatch chains, writes and fsyncs entries, rotating files as MaxBytes
// requires. On failure the current file is cut back to its last complete
// line and the entries not yet on disk count as dropped, so the chain on
// disk stays whole.
func (l *Log) writeBatch(entries []Entry) error {
	for {
		limit := l.maxBytes > 0 && !time.Now().Before(l.rotateAfter)
		n, err := l.writeFile(entries, limit)
		if err != nil {
			return l.failed(err, entries)
		}
		if entries = entries[n:]; len(entries) == 0 {
			return nil
		}
		if err := l.rotate(); err != nil {
			l.rotateAfter = time.Now().Add(rotateRetry)
			l.log.Error("audit: rotation failed; the current file grows on", "path", l.path, "error", err)
		}
	}
}

// writeFile appends to the current file (after its header, if it has none
// yet) as many entries as fit under MaxBytes when limit is set, at least
// one, and fsyncs. It returns how many it wrote; the state moves only once
// they are durable.
func (l *Log) writeFile(entries []Entry, limit bool) (int, error) {
	seq, prev, first, hdrEnd := l.seq, l.prev, l.first, l.hdrEnd
	b := l.buf[:0]
	if l.size == 0 {
		detail := "a new log"
		switch {
		case l.prevUnkeyed:
			detail = "continues the unkeyed log " + l.prevFile + ", sealing it"
		case l.prevFile != "":
			detail = "continues " + l.prevFile
		}
		h := Entry{Seq: seq + 1, J: l.lastJ, Time: time.Now().UTC(), Action: HeaderAction, Outcome: "ok",
			Detail: detail, Key: l.keyID, Prev: prev}
		b = appendLine(b, &h, l.mac)
		seq, prev, first, hdrEnd = h.Seq, h.Hash, h.Seq, int64(len(b))
	}
	n := 0
	for ; n < len(entries); n++ {
		e := &entries[n]
		e.Seq, e.Prev = seq+1, prev
		mark := len(b)
		b = appendLine(b, e, l.mac)
		if limit && l.size+int64(len(b)) > l.maxBytes && l.size+int64(mark) > hdrEnd {
			b = b[:mark] // the file is full: this one starts the next
			break
		}
		seq, prev = e.Seq, e.Hash
	}
	l.buf = b
	if len(b) == 0 {
		return 0, nil
	}
	if _, err := l.f.WriteAt(b, l.size); err != nil {
		return 0, err
	}
	// A group nobody waits on needs no fsync of its own for a while: journal
	// records are durable in the store's WAL until a JournalSync (the next
	// fsync within journalSyncEvery), best-effort ones (payload reads,
	// refusals) are fsynced within bestEffortSyncEvery (run's timer when no
	// group comes). A kill loses neither (the page cache keeps them); a
	// machine crash may lose that much of the best-effort lines.
	bound, best, journal := journalSyncEvery, uint64(0), false
	for _, e := range entries[:n] {
		if e.J == 0 {
			bound, best = bestEffortSyncEvery, best+max(e.stands, 1)
		} else {
			journal = true
		}
	}
	lazy := !l.mustSync && time.Since(l.syncedAt) < bound
	if lazy {
		l.unsynced = l.unsynced || journal
		l.unsyncedBest += best
	} else if err := l.syncFile(); err != nil {
		return 0, err
	}
	l.size += int64(len(b))
	l.seq, l.prev, l.first, l.hdrEnd = seq, prev, first, hdrEnd
	for _, e := range entries[:n] {
		l.lastJ = max(l.lastJ, e.J)
	}
	l.written.Add(uint64(n))
	if !lazy && time.Since(l.headAt) >= headInterval { // the head names synced records only
		l.writeHead()
	} else {
		l.headDirty = true
	}
	return n, nil
}

// journalSyncEvery bounds how long journal records go without an fsync
// while more keep coming.
const journalSyncEvery = time.Second

// bestEffortSyncEvery bounds how long a best-effort record goes without
// an fsync. Syncing each 2 ms group of payload reads cost 5–8% of a GET's
// server CPU.
const bestEffortSyncEvery = 100 * time.Millisecond

// dirty says records were written since the last fsync.
func (l *Log) dirty() bool { return l.unsynced || l.unsyncedBest > 0 }

// syncFile fsyncs the current file. A failure with journal records not
// yet synced leaves their fate unknown: JournalSync fails from then on, so
// the store keeps their notes. Best-effort records it covered count as
// dropped (they may be lost).
func (l *Log) syncFile() error {
	if err := l.f.Sync(); err != nil {
		if l.unsynced {
			l.journalBroken.Store(true)
		}
		if n := l.unsyncedBest; n > 0 {
			l.unsyncedBest = 0
			l.dropped.Add(n)
			l.log.Error("audit: records may be lost: an fsync failed", "path", l.path, "records", n, "error", err)
		}
		return err
	}
	l.unsynced, l.unsyncedBest, l.syncedAt = false, 0, time.Now()
	return nil
}

// failed notes a write failure: the entries not on disk count as dropped,
// an audit_dropped entry among them as the records it stood for.
func (l *Log) failed(err error, entries []Entry) error {
	var n uint64
	for _, e := range entries {
		if e.J != 0 { // a journal record is retried (run), not dropped
			l.retry = append(l.retry, e)
		} else {
			n += max(e.stands, 1)
		}
	}
	err = fmt.Errorf("audit: writing %s: %w", l.path, err)
	l.errMu.Lock()
	l.err = err
	l.errMu.Unlock()
	l.log.Error("audit: records lost", "path", l.path, "records", n, "error", err)
	l.f.Truncate(l.size)
	l.dropped.Add(n)
	return err
}
