package kms

import (
	"context"
	"errors"

	"github.com/keywarden/keywarden/kms/store"
)

// The one way kms changes the store: mutate runs a read–modify–write until
// its transaction commits. decide reads the current state, checks the
// policy and the rules, and returns the edit: the comparisons that hold
// while the state is as read, the operations, and the bookkeeping that
// follows a commit. Every transaction goes through s.commit (audit first,
// commit.go); a concurrent change (store.ErrConflict) runs decide again on
// the new state. Secrets (update, insert), containers (updateContainer),
// orders and quotas all write this way.

// maxRetries bounds compare-and-swap retries under contention.
const maxRetries = 64

// edit is one transaction a read–modify–write decided.
type edit struct {
	id, detail string // the audit record's object and what changed
	cmps       []store.Cmp
	ops        []store.Op
	after      settle
}

// settle is what follows a committed edit so the caches and the quota
// counts agree with the store: the post-commit hooks of every write, a
// delete's included.
type settle struct {
	project string
	freed   usage  // the quota project gets back (a delete, a consumer removed)
	gone    string // a deleted secret: out of the owner and record caches
	owned   string // a new secret: into the owner cache, under project
	then    func() // anything else (the quota configuration snapshot)
}

// errUnchanged, returned by decide, ends a write with nothing to write; the
// caller answers with what it read.
var errUnchanged = errors.New("unchanged")

// mutate runs decide and commits its edit, again on a conflict. lock, when
// set, queues this process's writers of one object (lockWrites) so that
// bursts do not exhaust each other's retries; busy is the answer when they
// still do.
func (s *Service) mutate(ctx context.Context, lock string, busy error, decide func() (edit, error)) error {
	if lock != "" {
		defer lockWrites(lock)()
	}
	for range maxRetries {
		e, err := decide()
		if err != nil {
			return err
		}
		err = s.commit(ctx, e.id, e.detail, e.cmps, e.ops)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return writeErr(err)
		}
		s.settle(e.after)
		return nil
	}
	return busy
}

func (s *Service) settle(h settle) {
	if h.gone != "" {
		s.owners.Delete(h.gone)
		s.cache.forget(h.gone)
	}
	if h.owned != "" {
		s.owners.Store(h.owned, h.project)
	}
	if h.freed != (usage{}) {
		s.quotaFreed(h.project, h.freed)
	}
	if h.then != nil {
		h.then()
	}
}

// removal is the edit that deletes an object's record, read at version,
// and its id pointer, with the quota it gives back to project.
func removal(key string, version int64, pointer, project string, freed usage) edit {
	return edit{
		cmps:  []store.Cmp{{Key: key, Version: version}},
		ops:   []store.Op{store.Delete(key), store.Delete(pointer)},
		after: settle{project: project, freed: freed},
	}
}

// consumersFreed is the consumers quota a change from before to after
// consumers gives back; additions take theirs through a quota hold.
func consumersFreed(before, after int) usage {
	var u usage
	u[qConsumers] = max(before-after, 0)
	return u
}
