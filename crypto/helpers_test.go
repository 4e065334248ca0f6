package crypto

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memKEKStore is a test double for the kms store's KEK records: CreateKEK is
// a compare-and-set under a mutex, as kms does with a store transaction.
type memKEKStore struct {
	mu    sync.Mutex
	keks  map[string][]byte
	delay time.Duration // widens race windows between load and create

	loads, creates, wins atomic.Int64
}

func newMemKEKStore() *memKEKStore { return &memKEKStore{keks: map[string][]byte{}} }

func (s *memKEKStore) LoadKEK(_ context.Context, project string) ([]byte, error) {
	s.loads.Add(1)
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.keks[project]
	if !ok {
		return nil, ErrKEKNotFound
	}
	return bytes.Clone(w), nil
}

func (s *memKEKStore) CreateKEK(_ context.Context, project string, wrapped []byte) ([]byte, error) {
	s.creates.Add(1)
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.keks[project]; ok {
		return bytes.Clone(w), nil
	}
	s.keks[project] = bytes.Clone(wrapped)
	s.wins.Add(1)
	return bytes.Clone(wrapped), nil
}

func (s *memKEKStore) get(project string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.keks[project])
}

func (s *memKEKStore) set(project string, wrapped []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keks[project] = bytes.Clone(wrapped)
}

// countingMaster counts calls to the master key it wraps.
type countingMaster struct {
	MasterKey
	wraps, unwraps atomic.Int64
}

func (c *countingMaster) Wrap(ctx context.Context, p, aad []byte) ([]byte, error) {
	c.wraps.Add(1)
	return c.MasterKey.Wrap(ctx, p, aad)
}

func (c *countingMaster) Unwrap(ctx context.Context, w, aad []byte) ([]byte, error) {
	c.unwraps.Add(1)
	return c.MasterKey.Unwrap(ctx, w, aad)
}

func testRootKey(t testing.TB) *RootKey {
	t.Helper()
	k, _, err := LoadOrCreateRootKey(filepath.Join(t.TempDir(), "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}
