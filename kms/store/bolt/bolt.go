// Package bolt is the embedded store.Store: one bbolt file behind a
// write-ahead log. A transaction is durable once its batch's WAL record is
// fdatasynced (one sync per group of concurrent writers); a flusher applies
// the WAL's writes to bbolt in the background (flush.go), and readers see
// the not yet applied writes through an in-memory overlay (overlay.go).
//
// On disk, bucket "data" maps each key to its value prefixed with the key's
// version as 8 big-endian bytes; bucket "meta" holds the schema version and
// "applied", the last LSN bbolt holds. The WAL is the directory path+".wal"
// (wal.go); Open replays what bbolt lacks.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/keywarden/keywarden/kms/store"
)

// schemaVersion is the on-disk layout this build reads and writes.
// While a store is open its file says schemaJournaled instead: the file
// may lag its WAL (keywarden.db.wal/), so a build that knows no WAL (the
// ones before it) must refuse the file rather than serve it without the
// writes still only in the WAL. A clean Close, with everything flushed,
// puts schemaVersion back, so the file can be opened by those builds again.
const (
	schemaVersion   = 1
	schemaJournaled = 2
)

var (
	dataBucket = []byte("data")
	metaBucket = []byte("meta")
	schemaKey  = []byte("schema")
)

// ErrLocked is wrapped by Open when another process holds the file.
var ErrLocked = errors.New("locked by another process")

// Options tune Open. The zero value is the default.
type Options struct {
	// Timeout bounds the wait for the file lock; <= 0 means 1s.
	Timeout time.Duration
	// MaxBatch caps how many Txns share one commit; <= 0 means 1024.
	MaxBatch int
	// FlushInterval is how often the WAL's writes are applied to bbolt;
	// <= 0 means 100ms.
	FlushInterval time.Duration
	// FlushBytes is the overlay size that starts a flush at once; <= 0
	// means 16 MiB. Past 4 times that the committer waits for the flusher.
	FlushBytes int
	// SegmentBytes is a WAL segment's preallocated size; <= 0 means 64 MiB.
	SegmentBytes int64
	// MapBudget bounds the bolt file's pages in RSS (trim.go): past it
	// the mapping is trimmed. <= 0: no trimming (the default).
	MapBudget int64
	// Logger receives what Open repairs (a torn WAL tail); nil: discarded.
	Logger *slog.Logger
}

// Stats counts the committer's work since Open.
type Stats struct {
	Commits  uint64 // WAL records, one fdatasync each
	Txns     uint64 // Txn calls answered, conflicts included
	WALSyncs uint64 // fdatasyncs of the WAL (attempted)
	Flushes  uint64 // overlay flushes into bbolt
	// Here counts the batches committed by a caller (commitHere), not the
	// committer goroutine.
	Here uint64
}

// Store implements store.Store on a bbolt file.
type Store struct {
	db *bbolt.DB

	// mu orders Txn's send on queue against Close closing it.
	mu     sync.RWMutex
	closed atomic.Bool
	queue  chan *request
	done   chan struct{} // closed when the committer has drained queue

	maxBatch int
	commits  atomic.Uint64
	txns     atomic.Uint64
	buf      []byte // the committer's record buffer (commitMu)
	// commitMu: one batch is resolved and logged at a time, by the
	// committer or by a caller in commitHere (hereBatch is its batch);
	// committerBusy: the committer holds a request or a batch.
	commitMu      sync.Mutex
	committerBusy atomic.Bool
	hereBatch     []*request
	here          atomic.Uint64

	wal     *wal
	ov      *overlay
	notes   []store.Note // in the WAL at Open
	applied uint64       // bbolt holds every LSN <= applied (flusher only)
	// flushErr is the last flush's failure, nil once one succeeds (ov.mu).
	flushErr              error
	flushEvery            time.Duration
	flushBytes, hardBytes int
	flushes               atomic.Uint64
	flushMu               sync.Mutex // one flush at a time
	flushKick             chan struct{}
	stopFlush, flushDone  chan struct{}

	torn []string // torn WAL tails cut at Open

	trim *trimmer

	// handMu orders the hand-over of notes (lazy.go); unsynced holds
	// the notes of records written but not yet synced.
	handMu   sync.Mutex
	unsynced []store.Note

	followMu       sync.Mutex
	follow         func(seq uint64, note []byte)
	checkpointHook func() error

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Scanner = (*Store)(nil)
	_ store.Journal = (*Store)(nil)
)

// Open opens or creates the store at path (mode 0600).
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	bo := *bbolt.DefaultOptions
	// bbolt polls the lock every 50ms and gives up one poll early; pad it so
	// Timeout is the least we wait.
	bo.Timeout = opts.Timeout + 50*time.Millisecond
	bo.NoSync = false // durability is the point; never trade it away
	db, err := bbolt.Open(path, 0o600, &bo)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s is %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if err := initSchema(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	// A new file's directory entry must be durable too, or a power cut
	// could lose the whole file along with every acknowledged write.
	if err := syncDir(filepath.Dir(path)); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s, err := start(db, path, opts)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

// start replays the WAL into bbolt and starts the committer and flusher.
func start(db *bbolt.DB, path string, opts Options) (*Store, error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 100 * time.Millisecond
	}
	if opts.FlushBytes <= 0 {
		opts.FlushBytes = 16 << 20
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 64 << 20
	}
	applied, notes, err := readApplied(db)
	if err != nil {
		return nil, err
	}
	w, res, err := openWAL(path+".wal", opts.SegmentBytes, applied+1, notes+1)
	if err != nil {
		return nil, fmt.Errorf("WAL: %w", err)
	}
	if opts.Logger != nil {
		for _, t := range res.torn {
			opts.Logger.Warn("store: cut a torn WAL tail (a write that was never acknowledged)", "where", t)
		}
	}
	if applied, notes, err = replay(db, applied, notes, res.txns); err != nil {
		w.close()
		return nil, fmt.Errorf("WAL replay: %w", err)
	}
	s := &Store{
		db:         db,
		queue:      make(chan *request, opts.MaxBatch),
		done:       make(chan struct{}),
		maxBatch:   opts.MaxBatch,
		wal:        w,
		ov:         newOverlay(),
		applied:    applied,
		flushEvery: opts.FlushInterval,
		flushBytes: opts.FlushBytes,
		hardBytes:  4 * opts.FlushBytes,
		flushKick:  make(chan struct{}, 1),
		stopFlush:  make(chan struct{}),
		flushDone:  make(chan struct{}),
		torn:       res.torn,
		trim:       newTrimmer(mapBudget(opts.MapBudget)),
	}
	s.ov.last, s.ov.lastNote = applied, notes
	for _, t := range res.txns {
		if t.note != nil {
			s.notes = append(s.notes, store.Note{Seq: t.nsn, Data: t.note})
		}
	}
	go s.run()
	go s.flusher()
	go s.trimLoop()
	return s, nil
}

func mapBudget(b int64) int64 { return max(b, 0) }

// initSchema creates the buckets of a new file, or checks an existing one.
func initSchema(db *bbolt.DB) error {
	return db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			if tx.Bucket(dataBucket) != nil {
				return errors.New("data bucket without schema version")
			}
			if _, err := tx.CreateBucket(metaBucket); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(dataBucket); err != nil {
				return err
			}
			return putSchema(tx, schemaJournaled)
		}
		v := meta.Get(schemaKey)
		if len(v) != 8 {
			return fmt.Errorf("unreadable schema version %x (this build supports %d)", v, schemaVersion)
		}
		if got := binary.BigEndian.Uint64(v); got != schemaVersion && got != schemaJournaled {
			return fmt.Errorf("schema version %d is not supported (this build supports %d)", got, schemaVersion)
		}
		if tx.Bucket(dataBucket) == nil {
			return errors.New("data bucket missing")
		}
		return putSchema(tx, schemaJournaled)
	})
}

func putSchema(tx *bbolt.Tx, v uint64) error {
	return tx.Bucket(metaBucket).Put(schemaKey, binary.BigEndian.AppendUint64(nil, v))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := s.readable(ctx); err != nil {
		return store.KV{}, err
	}
	raw, done, err := s.get(key)
	if err != nil {
		return store.KV{}, err
	}
	defer done()
	if raw == nil {
		return store.KV{}, store.ErrNotFound
	}
	return decode(key, raw)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.KV, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	var out []store.KV
	var derr error
	err := s.walk(ctx, prefix, after, func(k []byte, raw []byte) bool {
		if limit > 0 && len(out) == limit {
			return false
		}
		kv, err := decode(string(k), raw)
		if err != nil {
			derr = err
			return false
		}
		out = append(out, kv)
		return true
	})
	if err = errors.Join(err, derr); err != nil {
		return nil, err
	}
	return out, nil
}

// Scan implements store.Scanner: one consistent view, values not copied.
func (s *Store) Scan(ctx context.Context, prefix, after string, fn func(key string, value []byte) bool) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	var derr error
	err := s.walk(ctx, prefix, after, func(k []byte, raw []byte) bool {
		if len(raw) < 8 {
			derr = fmt.Errorf("bolt: corrupt entry %q: %d bytes", k, len(raw))
			return false
		}
		return fn(string(k), raw[8:])
	})
	return errors.Join(err, derr)
}

// Nth implements store.Scanner: the walk steps over keys without copying
// their values, so a deep offset costs only the steps.
func (s *Store) Nth(ctx context.Context, prefix, after string, n int) (string, error) {
	if err := s.readable(ctx); err != nil {
		return "", err
	}
	var key string
	i := 0
	err := s.walk(ctx, prefix, after, func(k []byte, _ []byte) bool {
		if i == n {
			key = string(k)
			return false
		}
		i++
		return true
	})
	return key, err
}

func (s *Store) readable(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// closedErr maps bbolt's error for a read racing Close to the contract's.
func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}

// decode copies the entry out: bbolt's slices are only valid inside the tx.
func decode(key string, raw []byte) (store.KV, error) {
	if len(raw) < 8 {
		return store.KV{}, fmt.Errorf("bolt: corrupt entry %q: %d bytes", key, len(raw))
	}
	return store.KV{
		Key:     key,
		Value:   bytes.Clone(raw[8:]),
		Version: int64(binary.BigEndian.Uint64(raw[:8])),
	}, nil
}

// Usage is the space of the data: bytes of pages in use by the keys and
// values, bytes those pages take, and the file's size. It walks the tree:
// for benchmarks and reports, not the request path.
func (s *Store) Usage() (inuse, pages, file int64, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		st := tx.Bucket(dataBucket).Stats()
		inuse = int64(st.BranchInuse + st.LeafInuse)
		pages = int64(st.BranchAlloc + st.LeafAlloc)
		file = tx.Size()
		return nil
	})
	return inuse, pages, file, closedErr(err)
}

// Stats returns the committer's counters.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Txns: s.txns.Load(),
		WALSyncs: s.wal.syncs.Load(), Flushes: s.flushes.Load(), Here: s.here.Load()}
}

// Torn names the torn WAL tails Open cut ("segment: n bytes cut at
// offset o"); they held no acknowledged write.
func (s *Store) Torn() []string { return slices.Clone(s.torn) }

// Flush applies every acknowledged write to the bbolt file now (a backup
// of the file alone is then complete).
func (s *Store) Flush() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	return s.flush()
}

// Close stops accepting Txns, lets the queued ones commit, and closes the
// file. Calling it again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		close(s.queue)
		s.mu.Unlock()
		<-s.done
		close(s.stopFlush)
		<-s.flushDone
		s.trim.close()
		// Leave bbolt whole: the next Open replays nothing. The WAL
		// keeps what a failed flush or a missing hook left.
		ferr := s.flush()
		if ferr == nil {
			ferr = s.retireWAL()
		}
		if ferr == nil {
			// Everything is in the file: builds without a WAL may open it.
			ferr = s.db.Update(func(tx *bbolt.Tx) error { return putSchema(tx, schemaVersion) })
		}
		s.closeErr = errors.Join(ferr, s.wal.close(), s.db.Close())
	})
	return s.closeErr
}
