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
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// Entry is one line of the log.
type Entry struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	User      string    `json:"user,omitempty"`
	Project   string    `json:"project,omitempty"`
	Roles     string    `json:"roles,omitempty"`
	Source    string    `json:"source,omitempty"`
	Protocol  string    `json:"protocol,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	Action    string    `json:"action"`
	SecretID  string    `json:"secret_id,omitempty"`
	Outcome   string    `json:"outcome"`
	RequestID string    `json:"request_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	// Key is the KeyID of the audit key, on a file's header record only.
	Key string `json:"key,omitempty"`
	// Prev is the hash of the previous line (Genesis for the first).
	Prev string `json:"prev"`
	// Hash is the HMAC of the line's bytes without its hash member; it is
	// always the line's last member.
	Hash string `json:"-"`
	// stands for the records an audit_dropped entry counts (its Detail
	// says how many), so that losing it loses the count, not one record.
	stands uint64
}

// Genesis is the Prev of the first record.
var Genesis = strings.Repeat("0", 64)

// HeaderAction is the action of the record that starts every file.
const HeaderAction = "audit_file"

// DefaultMaxBytes is the size past which a file is rotated by default.
const DefaultMaxBytes = 256 << 20

// hashMember is how every line ends: `,"hash":"<64 hex>"}`.
const hashMember = `,"hash":"`

// appendLine appends e's line (with its newline) to b, hashed with mac,
// and sets e.Hash.
func appendLine(b []byte, e *Entry, mac hash.Hash) []byte {
	start := len(b)
	b = appendEntry(b, e)
	mac.Reset()
	mac.Write(b[start:])
	var sum [32]byte
	b = append(b[:len(b)-1], hashMember...) // the closing brace goes after the hash
	at := len(b)
	b = hex.AppendEncode(b, mac.Sum(sum[:0]))
	e.Hash = string(b[at:])
	return append(b, '"', '}', '\n')
}

// appendEntry writes e as encoding/json would (same members, order and
// bytes; a test holds it to that) without reflection: it runs once per
// audited request.
func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendMember(b, "user", e.User, true)
	b = appendMember(b, "project", e.Project, true)
	b = appendMember(b, "roles", e.Roles, true)
	b = appendMember(b, "source", e.Source, true)
	b = appendMember(b, "protocol", e.Protocol, true)
	b = appendMember(b, "remote", e.Remote, true)
	b = appendMember(b, "action", e.Action, false)
	b = appendMember(b, "secret_id", e.SecretID, true)
	b = appendMember(b, "outcome", e.Outcome, false)
	b = appendMember(b, "request_id", e.RequestID, true)
	b = appendMember(b, "detail", e.Detail, true)
	b = appendMember(b, "key", e.Key, true)
	b = appendMember(b, "prev", e.Prev, false)
	return append(b, '}')
}

func appendMember(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(v) // anything to escape: encoding/json's rules exactly
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

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

// continueSet takes the chain's head from the newest rotated file, for an
// empty current file: new, or a crash came between a rotation's rename
// and the new file's header.
func (l *Log) continueSet() error {
	set, err := listRotated(l.path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if len(set) == 0 {
		return nil // a new log
	}
	newest := set[len(set)-1]
	f, err := os.Open(newest.path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	first, last, end, err := ends(f, fi.Size())
	if err == nil && (first == nil || end != fi.Size()) {
		err = errors.New("incomplete")
	}
	var key string
	if err == nil {
		key, err = lineKey(first)
	}
	if err == nil && key != "" && key != l.keyID {
		return fmt.Errorf("audit: %s is chained under audit key %s, but the key file holds key %s: wrong key file", newest.path, key, l.keyID)
	}
	var e Entry
	if err == nil {
		mac := l.mac
		if key == "" { // moved aside by the step that seals it
			mac, l.prevUnkeyed = newMAC(nil), true
		}
		e, err = decodeLine(last, mac)
	}
	if err == nil && e.Seq != newest.last {
		err = fmt.Errorf("ends at record %d", e.Seq)
	}
	if err != nil {
		return fmt.Errorf("audit: cannot continue the chain of %s: %v; run `keywarden audit verify`", newest.path, err)
	}
	l.seq, l.prev, l.prevFile = e.Seq, e.Hash, filepath.Base(newest.path)
	return nil
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

// run is the writer: one group at a time until Close.
func (l *Log) run() {
	defer close(l.done)
	entries := make([]Entry, 0, l.batch+1)
	var dones []chan error // Commit callers of the batch being written
	take := func(q queued) {
		entries = append(entries, entry(q.rec))
		if q.done != nil {
			dones = append(dones, q.done)
		}
	}
	write := func() error {
		err := l.writeBatch(entries)
		for _, d := range dones {
			d <- err
		}
		dones = dones[:0]
		return err
	}
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	var carried chan error // a Sync that arrived while pacing
	for {
		var waiter chan error
		if carried != nil {
			waiter, carried = carried, nil
			entries = entries[:0]
		} else {
			select {
			case q, ok := <-l.queue:
				if !ok {
					l.flushDropped()
					if l.headDirty {
						l.writeHead()
					}
					return
				}
				entries = entries[:0]
				take(q)
			case waiter = <-l.syncReq:
				entries = entries[:0]
			}
		}
		start := time.Now()
	fill:
		for len(entries) < l.batch {
			select {
			case q, ok := <-l.queue:
				if !ok {
					break fill
				}
				take(q)
			default:
				break fill
			}
		}
		if n := l.dropped.Swap(0); n > 0 {
			entries = append(entries, droppedEntry(n))
		}
		var err error
		if len(entries) > 0 {
			err = write()
		}
		if waiter != nil {
			// Everything queued before Sync was called must be on disk.
			for err == nil && len(l.queue) > 0 {
				entries = entries[:0]
				for len(entries) < l.batch && len(l.queue) > 0 {
					q, ok := <-l.queue
					if !ok {
						break
					}
					take(q)
				}
				if len(entries) > 0 {
					err = write()
				}
			}
			if err == nil && l.headDirty {
				l.writeHead()
			}
			waiter <- err
			continue
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

// rotateRetry is how long the writer goes on past MaxBytes after a failed
// rotation before it tries again: records matter more than file sizes.
const rotateRetry = time.Minute

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
		h := Entry{Seq: seq + 1, Time: time.Now().UTC(), Action: HeaderAction, Outcome: "ok",
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
	if err := l.f.Sync(); err != nil {
		return 0, err
	}
	l.size += int64(len(b))
	l.seq, l.prev, l.first, l.hdrEnd = seq, prev, first, hdrEnd
	l.written.Add(uint64(n))
	if time.Since(l.headAt) >= headInterval {
		l.writeHead()
	} else {
		l.headDirty = true
	}
	return n, nil
}

// rotate renames the current file, all of it fsynced, to
// path.<first>-<last> and puts an empty file in its place; the next
// writeFile starts it with a header chained to the last record.
func (l *Log) rotate() error {
	name := rotatedName(l.path, l.first, l.seq)
	if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s already exists: not replacing it", name) // only tampering gets here
	}
	if err := os.Rename(l.path, name); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		// Put the old file back and go on appending to it.
		return errors.Join(err, os.Rename(name, l.path))
	}
	// Both names must be durable before the new file holds a record.
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		l.log.Warn("audit: rotation not yet durable", "error", err)
	}
	l.f.Close()
	l.f, l.size, l.first, l.hdrEnd = f, 0, 0, 0
	l.prevFile, l.prevUnkeyed, l.unkeyed = filepath.Base(name), l.unkeyed, false
	l.rotations.Add(1)
	return nil
}

// headInterval bounds how often the head file is rewritten under load (a
// write and a rename each time); Sync and Close always bring it up to date.
const headInterval = 100 * time.Millisecond

// failed notes a write failure: the entries not on disk count as dropped,
// an audit_dropped entry among them as the records it stood for.
func (l *Log) failed(err error, entries []Entry) error {
	var n uint64
	for _, e := range entries {
		n += max(e.stands, 1)
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

// Head is the chain's last record as of the last group, kept next to the log
// (path + ".head") so that Verify can tell a log cut short at its end.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// HeadPath is where the head of the log at path is kept.
func HeadPath(path string) string { return path + ".head" }

// writeHead replaces the head file atomically (write, rename). It is not
// fsynced: after a crash it may lag the log, which Verify accepts; it can
// never lead it, since it is written after the log's fsync.
func (l *Log) writeHead() {
	l.headAt, l.headDirty = time.Now(), false
	b, _ := json.Marshal(Head{Seq: l.seq, Hash: l.prev})
	tmp := HeadPath(l.path) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		l.log.Warn("audit: head not updated", "error", err)
		return
	}
	if err := os.Rename(tmp, HeadPath(l.path)); err != nil {
		l.log.Warn("audit: head not updated", "error", err)
	}
}
