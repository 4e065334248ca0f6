// Package audit is the durable audit trail of kms: an append-only file of
// JSON lines, one per sensitive action (payload read, create, clone,
// consumer change, delete), each chained to the one before by SHA-256 so
// that a removed, reordered or edited record is detected by Verify.
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
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	Action    string    `json:"action"`
	SecretID  string    `json:"secret_id,omitempty"`
	Outcome   string    `json:"outcome"`
	RequestID string    `json:"request_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	// Prev is the hash of the previous line (Genesis for the first).
	Prev string `json:"prev"`
	// Hash is SHA-256 of the line's bytes without its hash member; it is
	// always the line's last member.
	Hash string `json:"-"`
}

// Genesis is the Prev of the first record.
var Genesis = strings.Repeat("0", 64)

// hashMember is how every line ends: `,"hash":"<64 hex>"}`.
const hashMember = `,"hash":"`

// encode renders e as its line (with the trailing newline) and sets e.Hash.
func encode(e *Entry) ([]byte, error) {
	body := appendEntry(make([]byte, 0, 320), e)
	sum := sha256.Sum256(body)
	e.Hash = hex.EncodeToString(sum[:])
	line := make([]byte, 0, len(body)+len(hashMember)+len(e.Hash)+3)
	line = append(line, body[:len(body)-1]...) // drop the closing brace
	line = append(line, hashMember...)
	line = append(line, e.Hash...)
	return append(line, '"', '}', '\n'), nil
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
	b = appendMember(b, "action", e.Action, false)
	b = appendMember(b, "secret_id", e.SecretID, true)
	b = appendMember(b, "outcome", e.Outcome, false)
	b = appendMember(b, "request_id", e.RequestID, true)
	b = appendMember(b, "detail", e.Detail, true)
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
	f    *os.File
	log  *slog.Logger

	mu       sync.RWMutex // orders Record's send against Close
	closed   bool
	queue    chan kms.AuditRecord
	done     chan struct{}
	maxWait  time.Duration
	batch    int
	interval time.Duration
	// headAt is when the head file was last written; headDirty says
	// records were written since (writer goroutine only).
	headAt    time.Time
	headDirty bool

	dropped atomic.Uint64 // records not queued since the last audit_dropped
	written atomic.Uint64

	// writer state, owned by the writer goroutine (and Open before it)
	seq  uint64
	prev string
	size int64 // offset after the last complete line

	syncReq chan chan error
	errMu   sync.Mutex
	err     error
}

var _ kms.Auditor = (*Log)(nil)

// Open opens (creating, mode 0600) the log at path for appending, and
// continues its chain. The file is locked: one writer at a time. A torn last
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
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s is in use by another process: %w", path, err)
	}
	l := &Log{
		path: path, f: f, log: opts.Logger,
		queue: make(chan kms.AuditRecord, opts.QueueSize), done: make(chan struct{}),
		maxWait: opts.MaxWait, batch: opts.MaxBatch, syncReq: make(chan chan error),
		interval: opts.GroupInterval,
	}
	torn, err := l.resume()
	if err != nil {
		f.Close()
		return nil, err
	}
	if torn > 0 {
		err := l.writeBatch([]Entry{{Time: time.Now().UTC(), Action: "audit_recovered", Outcome: "ok",
			Detail: fmt.Sprintf("discarded a torn last record of %d bytes", torn)}})
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	go l.run()
	return l, nil
}

// tailSize is how much of the end of the file resume reads; lines are far
// shorter.
const tailSize = 64 << 10

// resume finds the last complete line, cuts off anything after it, and
// takes its seq and hash as the chain's head. It returns the bytes cut.
func (l *Log) resume() (int64, error) {
	fi, err := l.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	size := fi.Size()
	l.prev = Genesis
	if size == 0 {
		return 0, nil
	}
	start := max(0, size-tailSize)
	buf := make([]byte, size-start)
	if _, err := l.f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("audit: %w", err)
	}
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 && start > 0 {
		return 0, fmt.Errorf("audit: %s: no complete record in its last %d bytes", l.path, tailSize)
	}
	torn := int64(len(buf) - (end + 1))
	l.size = start + int64(end+1)
	if torn > 0 {
		if err := l.f.Truncate(l.size); err != nil {
			return 0, fmt.Errorf("audit: cutting a torn record: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return 0, fmt.Errorf("audit: %w", err)
		}
	}
	if end < 0 {
		return torn, nil // only a torn first line: start afresh
	}
	lineStart := bytes.LastIndexByte(buf[:end], '\n') + 1
	e, err := decodeLine(buf[lineStart:end])
	if err != nil {
		return 0, fmt.Errorf("audit: %s: last record unreadable (%v); run `keywarden audit verify`", l.path, err)
	}
	l.seq, l.prev = e.Seq, e.Hash
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
	case l.queue <- r:
		return
	default:
	}
	t := time.NewTimer(l.maxWait)
	defer t.Stop()
	select {
	case l.queue <- r:
	case <-t.C:
		l.dropped.Add(1)
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
	return errors.Join(l.Err(), l.f.Close())
}

// run is the writer: one group at a time until Close.
func (l *Log) run() {
	defer close(l.done)
	entries := make([]Entry, 0, l.batch+1)
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
			case r, ok := <-l.queue:
				if !ok {
					l.flushDropped()
					if l.headDirty {
						l.writeHead()
					}
					return
				}
				entries = append(entries[:0], entry(r))
			case waiter = <-l.syncReq:
				entries = entries[:0]
			}
		}
		start := time.Now()
	fill:
		for len(entries) < l.batch {
			select {
			case r, ok := <-l.queue:
				if !ok {
					break fill
				}
				entries = append(entries, entry(r))
			default:
				break fill
			}
		}
		if n := l.dropped.Swap(0); n > 0 {
			entries = append(entries, droppedEntry(n))
		}
		var err error
		if len(entries) > 0 {
			err = l.writeBatch(entries)
		}
		if waiter != nil {
			// Everything queued before Sync was called must be on disk.
			for err == nil && len(l.queue) > 0 {
				entries = entries[:0]
				for len(entries) < l.batch && len(l.queue) > 0 {
					r, ok := <-l.queue
					if !ok {
						break
					}
					entries = append(entries, entry(r))
				}
				if len(entries) > 0 {
					err = l.writeBatch(entries)
				}
			}
			if err == nil && l.headDirty {
				l.writeHead()
			}
			waiter <- err
			continue
		}
		// Pace the groups; a Sync cuts the pause short.
		if d := l.interval - time.Since(start); d > 0 {
			pace.Reset(d)
			select {
			case <-pace.C:
			case carried = <-l.syncReq:
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
		Time: r.Time.UTC(), User: r.User, Project: r.Project, Action: r.Action,
		SecretID: r.SecretID, Outcome: r.Outcome, RequestID: r.RequestID,
	}
}

func droppedEntry(n uint64) Entry {
	return Entry{Time: time.Now().UTC(), Action: "audit_dropped", Outcome: "error",
		Detail: fmt.Sprintf("%d records were dropped: the audit queue was full", n)}
}

// writeBatch chains, writes and fsyncs entries. On failure the file is cut
// back to its last complete line and the entries count as dropped, so the
// chain on disk stays whole.
func (l *Log) writeBatch(entries []Entry) error {
	seq, prev := l.seq, l.prev
	ow := &offsetWriter{f: l.f, off: l.size}
	w := bufio.NewWriterSize(ow, 64<<10)
	for i := range entries {
		seq++
		entries[i].Seq, entries[i].Prev = seq, prev
		line, err := encode(&entries[i])
		if err != nil {
			return l.failed(err, len(entries))
		}
		prev = entries[i].Hash
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		return l.failed(err, len(entries))
	}
	if err := l.f.Sync(); err != nil {
		return l.failed(err, len(entries))
	}
	l.size = ow.off
	l.seq, l.prev = seq, prev
	l.written.Add(uint64(len(entries)))
	if time.Since(l.headAt) >= headInterval {
		l.writeHead()
	} else {
		l.headDirty = true
	}
	return nil
}

// headInterval bounds how often the head file is rewritten under load (a
// write and a rename each time); Sync and Close always bring it up to date.
const headInterval = 100 * time.Millisecond

func (l *Log) failed(err error, n int) error {
	err = fmt.Errorf("audit: writing %s: %w", l.path, err)
	l.errMu.Lock()
	l.err = err
	l.errMu.Unlock()
	l.log.Error("audit: records lost", "path", l.path, "records", n, "error", err)
	l.f.Truncate(l.size)
	l.dropped.Add(uint64(n))
	return err
}

// offsetWriter writes at a tracked offset, so a failed batch can be cut off.
type offsetWriter struct {
	f   *os.File
	off int64
}

func (w *offsetWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
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
