// Package store defines the persistence contract of kms: an ordered key-value
// space with per-key versions and multi-key compare-and-swap transactions.
//
// The contract is deliberately the common subset of bbolt and etcd so that the
// embedded store (store/bolt) and the cluster store (store/etcd) are
// interchangeable: no backend type crosses this boundary.
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
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

// Op is one write of a transaction: a Put, a Delete when Delete is set, or
// an addition to a counter when Add is not zero.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
	// Add adds to the counter at Key (CounterValue's encoding; absent is
	// 0) atomically with the rest of the transaction, without the caller
	// comparing the counter's version: concurrent adders never conflict.
	Add int64
}

// Add returns an Op that adds delta to the counter at key.
func Add(key string, delta int64) Op { return Op{Key: key, Add: delta} }

// CounterValue decodes a counter written by Add ops: 8 bytes big-endian.
func CounterValue(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// EncodeCounter is CounterValue's inverse, for backends.
func EncodeCounter(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

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

// Scanner is implemented by backends that can walk a range of keys without
// copying each value out, and skip keys without reading values. Callers use
// the package functions Scan and Nth, which fall back to List.
type Scanner interface {
	// Scan calls fn for each entry under prefix from the first key >=
	// prefix+after, in key order, until fn returns false. value is only
	// valid during the call. The walk sees one consistent snapshot on bolt;
	// on etcd, one per page.
	Scan(ctx context.Context, prefix, after string, fn func(key string, value []byte) bool) error
	// Nth returns the key of the n-th entry (0-based) under prefix from
	// prefix+after, or "" when there are not that many.
	Nth(ctx context.Context, prefix, after string, n int) (string, error)
}

// Counter is implemented by backends that count the keys under a prefix
// on their side without sending them (etcd's count-only range), where
// keeping a counter would make concurrent writers conflict: kms then
// counts instead of adding.
type Counter interface {
	Count(ctx context.Context, prefix string) (int64, error)
}

// RawScanner is implemented by backends that can walk a range in either
// direction handing out their own bytes (store/bolt): a walk over a large
// index then costs no allocation per entry. Callers use ScanRaw.
type RawScanner interface {
	// ScanRaw calls fn with each entry under prefix, in key order from the
	// first key >= prefix+from, or (reverse) in reverse order from the
	// last key < prefix+from (from empty: the last under prefix), until fn
	// returns false. key and value are only valid during the call.
	ScanRaw(ctx context.Context, prefix, from string, reverse bool, fn func(key, value []byte) bool) error
}

// ScanRaw walks the entries under prefix (see RawScanner) on any Store;
// without RawScanner a reverse walk lists the whole range first.
func ScanRaw(ctx context.Context, s Store, prefix, from string, reverse bool, fn func(key, value []byte) bool) error {
	if rs, ok := s.(RawScanner); ok {
		return rs.ScanRaw(ctx, prefix, from, reverse, fn)
	}
	if !reverse {
		return Scan(ctx, s, prefix, from, func(k string, v []byte) bool { return fn([]byte(k), v) })
	}
	kvs, err := s.List(ctx, prefix, "", 0)
	if err != nil {
		return err
	}
	for i := len(kvs) - 1; i >= 0; i-- {
		if from != "" && kvs[i].Key >= prefix+from {
			continue
		}
		if !fn([]byte(kvs[i].Key), kvs[i].Value) {
			return nil
		}
	}
	return nil
}

// scanPage is how many entries the List fallback reads at a time.
const scanPage = 512

// Scan walks the entries under prefix (see Scanner) on any Store.
func Scan(ctx context.Context, s Store, prefix, after string, fn func(key string, value []byte) bool) error {
	if sc, ok := s.(Scanner); ok {
		return sc.Scan(ctx, prefix, after, fn)
	}
	for {
		kvs, err := s.List(ctx, prefix, after, scanPage)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if !fn(kv.Key, kv.Value) {
				return nil
			}
		}
		if len(kvs) < scanPage {
			return nil
		}
		after = strings.TrimPrefix(kvs[len(kvs)-1].Key, prefix) + "\x00"
	}
}

// Nth returns the key of the n-th entry under prefix from prefix+after (see
// Scanner) on any Store.
func Nth(ctx context.Context, s Store, prefix, after string, n int) (string, error) {
	if sc, ok := s.(Scanner); ok {
		return sc.Nth(ctx, prefix, after, n)
	}
	var key string
	i := 0
	err := Scan(ctx, s, prefix, after, func(k string, _ []byte) bool {
		if i == n {
			key = k
			return false
		}
		i++
		return true
	})
	return key, err
}

// Journal is implemented by backends that log each transaction to a
// write-ahead journal before acknowledging it (store/bolt). A caller can
// then make a note (kms: the change's audit record) durable in the same
// sync as the writes, instead of a sync of its own. Notes are numbered in
// commit order, without gaps, from 1 (the note's Seq): a missing number on
// the follower's side is a lost note.
type Journal interface {
	Store
	// TxnNote is Txn with note made durable with the writes, only if the
	// transaction commits.
	TxnNote(ctx context.Context, cmps []Cmp, ops []Op, note []byte) error
	// Notes returns the notes still in the journal, in order: at open,
	// those a follower may not have seen yet.
	Notes() []Note
	// Follow registers follow, called in order with every note right
	// after it is durable (before its caller returns, but for a lazy
	// transaction's, which follow the sync that covers them),
	// and checkpoint, called before the journal drops records: the
	// follower must have made every note it was given durable, or return
	// an error to keep them. Until Follow, records holding notes are kept.
	// Notes are numbered from after at least (the follower's last seen:
	// a store restored from a backup must not number notes again).
	Follow(after uint64, follow func(seq uint64, note []byte), checkpoint func() error)
}

// LazyJournal is implemented by journals that can apply a transaction
// without waiting for its durability (store/bolt): TxnNoteLazy returns
// once the writes are visible to readers and written to the journal file,
// before its sync. A crash of the process keeps them; a crash of the
// machine before the next sync (the backend's own, within a bounded time)
// may lose them, and then their note too. The note is handed to the
// follower only once durable, so a follower never holds the note of a
// lost change. For writes whose loss is harmless (KMIP Fresh).
type LazyJournal interface {
	Journal
	TxnNoteLazy(ctx context.Context, cmps []Cmp, ops []Op, note []byte) error
}

// Note is a journal note and its number.
type Note struct {
	Seq  uint64
	Data []byte
}
