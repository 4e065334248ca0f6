package kms

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"

	"github.com/keywarden/keywarden/consumers"
)

// Secret consumers: who uses a secret. The list lives inside the secret's
// record, so adding a consumer, deleting the secret and destroying it under
// its deletion policy are each one compare-and-swap on that record: a
// consumer can never be left on a deleted secret, nor a secret deleted under
// a consumer.

// canCreateIn: a new secret (an order's, a clone) lands only in the caller's
// own project, under rule. Services act for a project with a token of that
// project; no role reaches across projects.
func (s *Service) canCreateIn(rule Rule, who Identity, project string) error {
	if project != who.Project {
		return Forbidden("a secret can only be created in the caller's own project (%s), not in %s", who.Project, project)
	}
	return s.allowProject(rule, who)
}

// EffectivePolicy is the secret's deletion policy. Metadata
// os_encrypt_key_deletion_policy (or Cinder's name for it), when set and
// valid, wins over the field: it is how callers that only speak Barbican
// metadata state the image's policy after the secret exists.
func (s *Secret) EffectivePolicy() DeletionPolicy {
	if p, err := consumers.ParseProperties(s.Metadata); err == nil && p.Policy != "" {
		return p.Policy
	}
	if s.DeletionPolicy == "" {
		return Retain
	}
	return s.DeletionPolicy
}

// consumerErr turns a consumers validation error into a kms one.
func consumerErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, consumers.ErrInvalid):
		return Invalid("%s", trimInvalid(err))
	case errors.Is(err, consumers.ErrInUse):
		return Conflict("%s", trimPrefix(err, consumers.ErrInUse))
	case errors.Is(err, consumers.ErrForceDenied):
		return Forbidden("%s", trimPrefix(err, consumers.ErrForceDenied))
	}
	return err
}

func trimInvalid(err error) string { return trimPrefix(err, consumers.ErrInvalid) }

// trimPrefix drops the "sentinel: " prefix the consumers errors carry.
func trimPrefix(err, sentinel error) string {
	msg, p := err.Error(), sentinel.Error()+": "
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

// newConsumer validates a caller's consumer and stamps it with the time and
// the registering project.
func (s *Service) newConsumer(who Identity, c Consumer) (Consumer, error) {
	if err := consumers.Validate(c); err != nil {
		return c, consumerErr(err)
	}
	c.Created, c.Project = s.clock(), who.Project
	return c, nil
}

// AddConsumer registers c on the secret; adding a consumer it already has
// changes nothing (idempotent). It returns the secret.
func (s *Service) AddConsumer(ctx context.Context, who Identity, id string, c Consumer) (sec *Secret, err error) {
	ctx = s.begin(ctx, who, "consumer_add")
	defer func() { s.record(ctx, who, "consumer_add", id, err) }()
	if err := who.Validate(); err != nil {
		return nil, err
	}
	c, err = s.newConsumer(who, c)
	if err != nil {
		return nil, err
	}
	var unchanged *Secret
	var hold quotaHold // the consumers quota of the secret's project (quotas.go)
	defer func() { hold.release(err == nil && unchanged == nil) }()
	sec, err = s.update(ctx, id, View{}, func(r *record) error {
		unchanged = nil
		if err := s.allowSecret(ConsumerAdd, who, r.Secret); err != nil {
			return err
		}
		list, added, err := consumers.Add(r.Consumers, c)
		if err != nil {
			return consumerErr(err)
		}
		if !added {
			unchanged = r.Secret.Clone()
			return errUnchanged
		}
		if hold.pc == nil {
			if hold, err = s.holdQuota(ctx, r.Project, usage{qConsumers: 1}); err != nil {
				return err
			}
		}
		r.Consumers = list
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return unchanged, nil
	}
	return sec, err
}

// RemoveConsumer unregisters c (idempotent); a consumer is removed by the
// project that registered it or the secret's project (Barbican's rule), or
// by a service. When it was the last consumer and the secret's policy is
// on_last_consumer, the secret is destroyed in the same write; destroyed
// says so and sec is its last state. Destroying needs the right to delete
// the secret (or a service role): a mere reader may unregister a consumer
// but not thereby erase a key.
func (s *Service) RemoveConsumer(ctx context.Context, who Identity, id string, c Consumer) (sec *Secret, destroyed bool, err error) {
	ctx = s.begin(ctx, who, "consumer_remove")
	defer func() {
		s.record(ctx, who, "consumer_remove", id, err)
		if destroyed {
			s.record(ctx, who, "destroy_on_last_consumer", id, nil)
		}
	}()
	if err := who.Validate(); err != nil {
		return nil, false, err
	}
	if err := consumers.Validate(c); err != nil {
		return nil, false, consumerErr(err)
	}
	var unchanged *Secret
	sec, err = s.update(ctx, id, View{}, func(r *record) error {
		unchanged, destroyed = nil, false
		if err := s.allowSecret(ConsumerRemove, who, r.Secret); err != nil {
			return err
		}
		i := consumers.Index(r.Consumers, c)
		if i < 0 {
			unchanged = r.Secret.Clone()
			return errUnchanged
		}
		if !consumers.MayRemove(r.Consumers[i], who.Project, r.Project) {
			return Forbidden("only the project that registered a consumer, or the secret's project, can remove it")
		}
		list, _ := consumers.Remove(r.Consumers, c)
		r.Consumers = list
		if consumers.DestroyAfterRemove(r.EffectivePolicy(), len(list)) {
			if err := s.allowSecret(ConsumerDestroy, who, r.Secret); err != nil {
				return err
			}
			destroyed = true
			return errDelete
		}
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return unchanged, false, nil
	case err != nil:
		destroyed = false
		return nil, false, err
	}
	return sec, destroyed, nil
}

// ListConsumers returns one page of the secret's consumers, oldest first,
// and how many it has.
func (s *Service) ListConsumers(ctx context.Context, who Identity, id string, offset, limit int) ([]Consumer, int, error) {
	if err := who.Validate(); err != nil {
		return nil, 0, err
	}
	l, err := s.read(ctx, id, View{})
	if err != nil {
		return nil, 0, err
	}
	if err := s.allowSecret(ConsumerRead, who, l.rec.Secret); err != nil {
		return nil, 0, err
	}
	cs := l.rec.Consumers
	return append([]Consumer(nil), consumers.Page(cs, offset, limit)...), len(cs), nil
}

// Writes to one secret are serialized within the process. Compare-and-swap
// alone is correct but, with many writers on one secret (a burst of
// consumer changes, clones and deletes), lets one writer through per commit
// and can exhaust the others' retries; queueing on a lock gives the same
// order without the storm. Other nodes (etcd) are still kept apart by the
// compare-and-swap. Striped, so unrelated secrets rarely share a lock.
var (
	writeLocks [1024]sync.Mutex
	lockSeed   = maphash.MakeSeed()
)

// lockWrites locks id's stripe and returns the unlock.
func lockWrites(id string) func() {
	mu := &writeLocks[maphash.String(lockSeed, id)%uint64(len(writeLocks))]
	mu.Lock()
	return mu.Unlock
}
