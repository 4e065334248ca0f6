// Package store defines the persistence contract of kms: an ordered key-value
// space with per-key versions and multi-key compare-and-swap transactions.
//
// The contract is deliberately the common subset of bbolt and etcd so that the
// embedded store (store/bolt) and the cluster store (store/etcd) are
// interchangeable: no backend type crosses this boundary.
package store

import (
	"context"
	"errors"
)

var (
	// ErrNotFound is returned by Get when the key does not exist.
	ErrNotFound = errors.New("store: key not found")
	// ErrConflict is returned by Txn when one of its comparisons fails;
	// nothing was written.
	ErrConflict = errors.New("store: compare failed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("store: closed")
	// ErrUnavailable wraps a failure of a backend that is down or without
	// quorum for now (an etcd leader election, no reachable member): try
	// again later. A write that failed so may still have been applied
	// (etcd's "request timed out"); it was not acknowledged.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrFull wraps a write refused because the store's disk is full (or
	// over quota). Nothing of the transaction was written; the same write
	// succeeds once space is freed.
	ErrFull = errors.New("store: no space left")
)

// KV is one stored entry. Version counts the writes to the key since it was
// last created: 1 after the first Put, 0 means absent (etcd's Version).
type KV struct {
	Key     string
	Value   []byte
	Version int64
}

// Cmp asserts a key's current version. Version 0 asserts the key is absent.
type Cmp struct {
	Key     string
	Version int64
}

// Op is one write of a transaction: a Put, or a Delete when Delete is set.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// Put returns an Op that writes value under key.
func Put(key string, value []byte) Op { return Op{Key: key, Value: value} }

// Delete returns an Op that removes key (a no-op if absent).
func Delete(key string) Op { return Op{Key: key, Delete: true} }

// Store is implemented by every backend.
//
// Durability: Txn returns nil only once its writes are on stable storage
// (fsync for bolt, raft quorum for etcd). Concurrent Txn calls may be
// coalesced into one physical commit, but each is atomic and isolated: its
// comparisons are evaluated against the state including every transaction
// ordered before it.
type Store interface {
	// Get returns the entry at key, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns the entries whose key starts with prefix, in key order,
	// starting at the first key >= prefix+after (after may be empty), at most
	// limit entries (limit <= 0: all).
	List(ctx context.Context, prefix, after string, limit int) ([]KV, error)
	// Txn applies ops atomically if every cmp holds, else returns ErrConflict
	// and writes nothing.
	Txn(ctx context.Context, cmps []Cmp, ops []Op) error
	// Close releases the backend; in-flight transactions finish first.
	Close() error
}
