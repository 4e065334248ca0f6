// Package audit is the durable audit trail of kms: an append-only set of
// files of JSON lines, one line per sensitive action (payload read, create,
// clone, consumer change, delete), each chained to the one before so that a
// removed, reordered or edited record is detected by Verify.
//
// Keyed chain. A line's hash member is HMAC-SHA256, under the audit key, of
// the line without that member; the next line names it as prev. Without the
// key nobody can write a chain that verifies, even by rewriting every file
// and the head file. The key is a 32-byte file (default audit.key next to
// the log) created 0600 on first Open; one readable by group or others is
// refused. Every file starts with a header record (action "audit_file")
// whose key member is the key's KeyID, so Verify can tell a wrong key from
// tampering. The key only helps against whoever cannot read it: keep it out
// of reach of those who handle, ship or archive the log.
//
// Rotation. The log at path is the newest file of its set. When the next
// line would take it past Options.MaxBytes, the writer (which has already
// fsynced it) renames it to path.<first>-<last>, the sequence numbers of its
// first and last records, and starts a new file at path whose header's prev
// is the last hash of the old one: one chain runs through the set. Sequence
// names sort, never collide, and let Verify name a missing file. Records
// are numbered once, by the writer, so rotation can neither lose nor repeat
// one; it happens on the writer goroutine and Record only queues. The
// oldest rotated files may be archived away: Verify then reports where the
// set starts (it cannot tell archiving from removal at that end). Next to
// the log also sit path.head (see Head) and path.lock (the writer's lock,
// on a file of its own since path is renamed).
//
// Old, unkeyed logs (plain SHA-256, no header) are not continued: Open
// renames such a file into the set as path.<first>-<last> and starts a
// keyed file whose header chains to its last hash. That keyed link seals
// the old records: editing them afterwards breaks it. Verify accepts
// unkeyed files only before the first keyed one, and never as the whole
// set.
//
// Log implements kms.Auditor. Record only queues: one writer goroutine
// takes whatever is queued, writes it and fsyncs once per group, so the hot
// path never waits for the disk. When the queue is full a caller waits at
// most Options.MaxWait; a record that still does not fit is counted, and the
// count is written as an audit_dropped record, so a gap is itself on the
// trail. Records queued but not yet fsynced when the process dies are lost
// (at most one group); every record written is durable before the next
// group starts.
//
// A line never holds key material: kms.AuditRecord has no field for it.
package audit

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// Options tune Open; the zero value is the default.
type Options struct {
	// KeyFile holds the audit key (default audit.key in the log's
	// directory; created 0600 when missing).
	KeyFile string
	// MaxBytes is the size a file may reach before it is rotated (default
	// DefaultMaxBytes; negative: never). A file always takes at least one
	// record after its header, however small MaxBytes is.
	MaxBytes int64
	// QueueSize is how many records may wait for the writer (default 8192).
	QueueSize int
	// MaxBatch caps the records of one write+fsync (default 1024).
	MaxBatch int
	// MaxWait is how long Record waits for room in a full queue before it
	// counts the record as dropped (default 200ms).
	MaxWait time.Duration
	// GroupInterval is the least time between two write+fsync groups when
	// nobody waits on Sync (default 2ms): under load, records pile up into
	// fewer, larger groups instead of waking the writer for each one.
	GroupInterval time.Duration
	// StallAfter is how long one write or fsync of the trail may go
	// unanswered before changes are refused (default 2s): see JournalErr.
	StallAfter time.Duration
	// Logger receives write failures (default slog.Default()).
	Logger *slog.Logger
}

// Log is an open audit log.
type Log struct {
	path string
	lock *os.File // path.lock, flocked: stays put while path is rotated
	f    *os.File
	log  *slog.Logger

	mu       sync.RWMutex // orders Record's send against Close
	closed   bool
	queue    chan queued
	done     chan struct{}
	maxWait  time.Duration
	batch    int
	interval time.Duration
	// headAt is when the head file was last written; headDirty says
	// records were written since (writer goroutine only).
	headAt    time.Time
	headDirty bool

	dropped   atomic.Uint64 // records not queued since the last audit_dropped
	written   atomic.Uint64
	rotations atomic.Uint64

	// writer state, owned by the writer goroutine (and Open before it)
	mac         hash.Hash
	keyID       string
	maxBytes    int64 // <= 0: never rotate
	seq         uint64
	prev        string
	size        int64  // offset after the last complete line
	first       uint64 // seq of the current file's header
	hdrEnd      int64  // offset after the header
	prevFile    string // the file the current one continues, for its header
	prevUnkeyed bool   // and it is an unkeyed one
	unkeyed     bool   // the current file is an old, unkeyed one: Open moves it aside
	rotateAfter time.Time
	buf         []byte

	// lastJ is the highest j written (writer), openJ the one found at
	// Open; retrying says journal records failed and wait to be written.
	lastJ, openJ uint64
	retrying     atomic.Bool
	retry        []Entry // journal records to write again (writer)
	// unsynced: journal records written since the last fsync, at
	// syncedAt (writer); journalBroken: an fsync failed over some.
	unsynced bool
	// unsyncedBest counts best-effort records (no j, nobody waiting)
	// written since the last fsync; mustSync says the group being written
	// has a Commit caller waiting (writer).
	unsyncedBest  uint64
	mustSync      bool
	syncedAt      time.Time
	journalBroken atomic.Bool

	// overflow holds, in order, the journal records Append found no room
	// for (a stuck disk): the store's committer never waits on the
	// trail. behind counts them; busySince is when the writer's current
	// group started (unix ns, 0 when idle): see JournalErr.
	ovMu       sync.Mutex
	overflow   []queued
	behind     atomic.Int64
	busySince  atomic.Int64
	stallAfter time.Duration

	syncReq chan chan error
	// wake cuts the writer's pacing short: a Commit caller is waiting.
	wake  chan struct{}
	errMu sync.Mutex
	err   error
}

var _ kms.Auditor = (*Log)(nil)

// Open opens (creating, mode 0600) the log at path for appending, and
// continues its chain. The log is locked: one writer at a time. A torn last
// line (the process died mid-write) is cut off and the cut is recorded.
func Open(path string, opts Options) (*Log, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.GroupInterval <= 0 {
		opts.GroupInterval = 2 * time.Millisecond
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = 2 * time.Second
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.KeyFile == "" {
		opts.KeyFile = filepath.Join(filepath.Dir(path), "audit.key")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	key, created, err := LoadOrCreateKey(opts.KeyFile)
	if err != nil {
		return nil, err
	}
	if created {
		opts.Logger.Info("created audit key", "path", opts.KeyFile, "id", KeyID(key))
	}
	l := &Log{
		path: path, log: opts.Logger,
		queue: make(chan queued, opts.QueueSize), done: make(chan struct{}),
		maxWait: opts.MaxWait, batch: opts.MaxBatch, syncReq: make(chan chan error), wake: make(chan struct{}, 1),
		interval: opts.GroupInterval, mac: newMAC(key), keyID: KeyID(key), maxBytes: opts.MaxBytes,
		stallAfter: opts.StallAfter,
	}
	if err := l.open(); err != nil {
		l.closeFiles()
		return nil, err
	}
	go l.run()
	return l, nil
}

// open locks the log, opens its current file and brings the chain to a
// state where the writer can append: torn tail cut, unkeyed file moved
// aside, header written.
func (l *Log) open() error {
	var err error
	// The lock is a file of its own: path itself is renamed on rotation.
	if l.lock, err = os.OpenFile(l.path+".lock", os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := syscall.Flock(int(l.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("audit: %s is in use by another process: %w", l.path, err)
	}
	if l.f, err = os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	torn, err := l.resume()
	if err != nil {
		return err
	}
	if err := l.journalOf(); err != nil {
		return fmt.Errorf("audit: finding the last journal record: %w", err)
	}
	l.lastJ = l.openJ
	if l.unkeyed {
		if err := l.rotate(); err != nil {
			return fmt.Errorf("audit: moving the unkeyed log aside: %w", err)
		}
		l.log.Info("audit: unkeyed log sealed and moved aside; a keyed one starts", "old", l.prevFile)
	}
	var entries []Entry
	if torn > 0 {
		entries = append(entries, Entry{Time: time.Now().UTC(), Action: "audit_recovered", Outcome: "ok",
			Detail: fmt.Sprintf("discarded a torn last record of %d bytes", torn)})
	}
	if len(entries) > 0 || l.size == 0 { // a new file gets its header now
		if err := l.writeBatch(entries); err != nil {
			return err
		}
	}
	return nil
}

// tailSize is how much of the end of a file is read to find its last line;
// lines are far shorter.
const tailSize = 64 << 10

// resume finds the last complete line of the current file, cuts off
// anything after it, and takes its seq and hash as the chain's head; an
// empty file continues the newest rotated one. It returns the bytes cut.
func (l *Log) resume() (torn int64, err error) {
	fi, err := l.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	first, last, end, err := ends(l.f, fi.Size())
	if err != nil {
		return 0, fmt.Errorf("audit: %s: %v", l.path, err)
	}
	l.seq, l.prev, l.size = 0, Genesis, end
	if first != nil {
		keyID, err := lineKey(first)
		if err != nil {
			return 0, fmt.Errorf("audit: %s: first record: %v; run `keywarden audit verify`", l.path, err)
		}
		mac := l.mac
		switch {
		case keyID == "":
			mac, l.unkeyed = newMAC(nil), true
		case keyID != l.keyID:
			return 0, fmt.Errorf("audit: %s is chained under audit key %s, but the key file holds key %s: wrong key file", l.path, keyID, l.keyID)
		}
		h, err := decodeLine(first, mac)
		if err != nil {
			return 0, fmt.Errorf("audit: %s: first record: %v; run `keywarden audit verify`", l.path, err)
		}
		e, err := decodeLine(last, mac)
		if err != nil {
			return 0, fmt.Errorf("audit: %s: last record: %v; run `keywarden audit verify`", l.path, err)
		}
		l.seq, l.prev, l.first, l.hdrEnd = e.Seq, e.Hash, h.Seq, int64(len(first)+1)
	}
	// Cut only once the file is known to be ours to continue.
	if torn = fi.Size() - end; torn > 0 {
		if err := l.f.Truncate(end); err != nil {
			return 0, fmt.Errorf("audit: cutting a torn record: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return 0, fmt.Errorf("audit: %w", err)
		}
	}
	if first == nil {
		return torn, l.continueSet()
	}
	return torn, nil
}

// Record queues r; it waits at most MaxWait when the queue is full.
func (l *Log) Record(_ context.Context, r kms.AuditRecord) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- queued{rec: r}:
		return
	default:
	}
	t := time.NewTimer(l.maxWait)
	defer t.Stop()
	select {
	case l.queue <- queued{rec: r}:
	case <-t.C:
		l.dropped.Add(1)
	}
}

// queued is a record waiting for the writer; done, when set, learns
// whether it reached the disk.
type queued struct {
	rec  kms.AuditRecord
	j    uint64 // a journal record's LSN (Append)
	done chan error
}

// CommitWait bounds how long Commit waits for room and for the disk.
const CommitWait = 5 * time.Second

// ErrUnavailable is Commit's answer when the record could not be made
// durable in time (the queue full, the writer stuck, the log closed).
var ErrUnavailable = errors.New("audit: the record could not be made durable")

// Commit writes r and returns once it is fsynced (grouped with whatever
// else is queued), or with the write's error: the caller must not make
// the change it records unless Commit returned nil.
func (l *Log) Commit(ctx context.Context, r kms.AuditRecord) error {
	done := make(chan error, 1)
	t := time.NewTimer(CommitWait)
	defer t.Stop()
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrUnavailable
	}
	select {
	case l.queue <- queued{rec: r, done: done}:
		select { // a state change waits on this record: no pacing
		case l.wake <- struct{}{}:
		default:
		}
	case <-t.C:
		l.mu.RUnlock()
		return fmt.Errorf("%w: the queue is full", ErrUnavailable)
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	l.mu.RUnlock()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%w: the writer did not answer", ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sync waits until every record queued before it is on disk.
func (l *Log) Sync(ctx context.Context) error {
	ch := make(chan error, 1)
	select {
	case l.syncReq <- ch:
	case <-l.done:
		return l.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err is the last write failure, if any.
func (l *Log) Err() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

// Stats: records written since Open, and records dropped and not yet
// accounted for on the trail.
func (l *Log) Stats() (written, dropped uint64) { return l.written.Load(), l.dropped.Load() }

// Rotations is how many files were rotated since Open.
func (l *Log) Rotations() uint64 { return l.rotations.Load() }

// Close writes what is queued, fsyncs and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return l.Err()
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	return errors.Join(l.Err(), l.closeFiles())
}

func (l *Log) closeFiles() error {
	var err error
	if l.f != nil {
		err = l.f.Close()
	}
	if l.lock != nil {
		l.lock.Close() // releases the flock
	}
	return err
}
