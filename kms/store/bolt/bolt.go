// Package bolt is the embedded store.Store: one bbolt file, every write
// fsynced, concurrent writers coalesced into one commit (group commit).
//
// On disk, bucket "data" maps each key to its value prefixed with the key's
// version as 8 big-endian bytes; bucket "meta" holds the schema version.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/keywarden/keywarden/kms/store"
)

// schemaVersion is the on-disk layout this build reads and writes.
const schemaVersion = 1

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
}

// Stats counts the committer's work since Open.
type Stats struct {
	Commits uint64 // physical commits, one fsync each
	Txns    uint64 // Txn calls answered by the committer, conflicts included
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

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Scanner = (*Store)(nil)
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
	s := &Store{
		db:       db,
		queue:    make(chan *request, opts.MaxBatch),
		done:     make(chan struct{}),
		maxBatch: opts.MaxBatch,
	}
	go s.run()
	return s, nil
}

// initSchema creates the buckets of a new file, or checks an existing one.
func initSchema(db *bbolt.DB) error {
	return db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			if tx.Bucket(dataBucket) != nil {
				return errors.New("data bucket without schema version")
			}
			meta, err := tx.CreateBucket(metaBucket)
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucket(dataBucket); err != nil {
				return err
			}
			return meta.Put(schemaKey, binary.BigEndian.AppendUint64(nil, schemaVersion))
		}
		v := meta.Get(schemaKey)
		if len(v) != 8 {
			return fmt.Errorf("unreadable schema version %x (this build supports %d)", v, schemaVersion)
		}
		if got := binary.BigEndian.Uint64(v); got != schemaVersion {
			return fmt.Errorf("schema version %d is not supported (this build supports %d)", got, schemaVersion)
		}
		if tx.Bucket(dataBucket) == nil {
			return errors.New("data bucket missing")
		}
		return nil
	})
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
	var kv store.KV
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(dataBucket).Get([]byte(key))
		if raw == nil {
			return store.ErrNotFound
		}
		var err error
		kv, err = decode(key, raw)
		return err
	})
	return kv, closedErr(err)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.KV, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	var out []store.KV
	err := s.db.View(func(tx *bbolt.Tx) error {
		p := []byte(prefix)
		c := tx.Bucket(dataBucket).Cursor()
		for k, v := c.Seek([]byte(prefix + after)); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if limit > 0 && len(out) == limit {
				break
			}
			// A long scan holds a read tx (and old pages); let callers stop it.
			if len(out) > 0 && len(out)%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			kv, err := decode(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, kv)
		}
		return nil
	})
	if err != nil {
		return nil, closedErr(err)
	}
	return out, nil
}

// Scan implements store.Scanner: one read transaction, values not copied.
func (s *Store) Scan(ctx context.Context, prefix, after string, fn func(key string, value []byte) bool) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		p := []byte(prefix)
		c := tx.Bucket(dataBucket).Cursor()
		n := 0
		for k, v := c.Seek([]byte(prefix + after)); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if len(v) < 8 {
				return fmt.Errorf("bolt: corrupt entry %q: %d bytes", k, len(v))
			}
			if !fn(string(k), v[8:]) {
				return nil
			}
		}
		return nil
	})
	return closedErr(err)
}

// Nth implements store.Scanner: the cursor steps over keys without reading
// or copying their values, so a deep offset costs only the steps.
func (s *Store) Nth(ctx context.Context, prefix, after string, n int) (string, error) {
	if err := s.readable(ctx); err != nil {
		return "", err
	}
	var key string
	err := s.db.View(func(tx *bbolt.Tx) error {
		p := []byte(prefix)
		c := tx.Bucket(dataBucket).Cursor()
		k, _ := c.Seek([]byte(prefix + after))
		for i := 0; k != nil && bytes.HasPrefix(k, p); i++ {
			if i == n {
				key = string(k)
				return nil
			}
			if i%65536 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			k, _ = c.Next()
		}
		return nil
	})
	return key, closedErr(err)
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
	return Stats{Commits: s.commits.Load(), Txns: s.txns.Load()}
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
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}
