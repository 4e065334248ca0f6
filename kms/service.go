// Package kms is the centre of Keywarden: the object model and every rule
// about it. The protocol adapters (barbican, kmip) translate wire formats into
// calls on Service and hold no rules of their own.
package kms

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// DefaultMaxPayload is Barbican's limit on a secret's payload.
const DefaultMaxPayload = 20000

// Config is what a Service needs.
type Config struct {
	Store   store.Store
	Keyring *crypto.Keyring // nil: one is built on Store with Master
	Master  crypto.MasterKey
	// MaxPayload bounds a payload in bytes (default DefaultMaxPayload).
	MaxPayload int
	// Passphrase is the default policy of generated passphrases.
	Passphrase crypto.PassphrasePolicy
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Audit receives one record per sensitive action (nil: none).
	Audit Auditor
	// Logger receives what the operator must know (default slog.Default()).
	Logger *slog.Logger
	// OrphanMinAge is the floor of an orphan rule's idle time (default
	// DefaultOrphanMinAge).
	OrphanMinAge time.Duration
	// Policy overrides rows of the policy table (policy.go) by name; nil:
	// the defaults.
	Policy map[string]string
	// Quotas are every project's default quotas (quotas.go); an absent
	// kind is Unlimited, so nil bounds nothing. A project's configured
	// quotas (SetProjectQuotas) win kind by kind.
	Quotas Quotas
	// NameColumnBytes bounds the memory of the name columns that answer
	// name= lists (listcolumns.go): 0 is DefaultNameColumnBytes, negative
	// turns them off (such lists scan the index's summaries).
	NameColumnBytes int64
}

// Service enforces every rule on secrets; it is safe for concurrent use.
type Service struct {
	st         store.Store
	keys       *crypto.Keyring
	maxPayload int
	passphrase crypto.PassphrasePolicy
	now        func() time.Time
	audit      Auditor
	// journal is set when the store journals and the auditor follows it:
	// a change's record then rides in the store's own sync (journal.go).
	journal store.Journal
	jaudit  JournalAuditor

	// owners caches secret id → project: a secret never changes project, so
	// the entry can only go stale by deletion, which the record read catches.
	policy       *Policy
	log          *slog.Logger
	orphanMinAge time.Duration

	owners *ownerCache
	cache  *recordCache
	quotas *quotaState
	// freshing holds the ids whose Fresh clear is in flight (clearFresh).
	freshing sync.Map

	// listIndex: every record has its list index entry (listindex.go).
	listIndex   atomic.Bool
	listIndexMu sync.Mutex
	// listMarkerPending: the store had no record at start-up, so the
	// marker is still to be written, with the first new record.
	listMarkerPending atomic.Bool
	// names: the name columns of name= lists (listcolumns.go); nil: none.
	names *nameColumns
}

// New builds a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("kms: no store")
	}
	s := &Service{
		st: cfg.Store, keys: cfg.Keyring, maxPayload: cfg.MaxPayload,
		passphrase: cfg.Passphrase, now: cfg.Now, audit: cfg.Audit,
		cache: newRecordCache(65536), owners: newOwnerCache(1 << 18),
		names: newNameColumns(cfg.Store, cfg.NameColumnBytes),
	}
	var err error
	if s.policy, err = NewPolicy(cfg.Policy); err != nil {
		return nil, err
	}
	if s.quotas, err = newQuotaState(cfg.Quotas); err != nil {
		return nil, err
	}
	if s.keys == nil {
		if cfg.Master == nil {
			return nil, errors.New("kms: neither keyring nor master key")
		}
		s.keys = crypto.NewKeyring(cfg.Master, kekStore{cfg.Store})
	}
	if s.maxPayload <= 0 {
		s.maxPayload = DefaultMaxPayload
	}
	if s.passphrase.Length == 0 {
		s.passphrase = crypto.DefaultPassphrasePolicy
	}
	if err := s.passphrase.Validate(); err != nil {
		return nil, err
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log = cfg.Logger; s.log == nil {
		s.log = slog.Default()
	}
	if s.orphanMinAge = cfg.OrphanMinAge; s.orphanMinAge <= 0 {
		s.orphanMinAge = DefaultOrphanMinAge
	}
	if s.audit == nil {
		s.audit = nopAuditor{}
	}
	if err := s.followJournal(); err != nil {
		return nil, err
	}
	// A store from before the list index gets it now, once; a failure
	// leaves lists on the whole-project read until a later list builds it.
	ctx, cancel := context.WithTimeout(context.Background(), listIndexBuildTimeout)
	s.listIndexReady(ctx)
	cancel()
	return s, nil
}

// MaxPayload is the payload limit in bytes.
func (s *Service) MaxPayload() int { return s.maxPayload }

// clock returns now in UTC at the microsecond precision Barbican shows.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// aclIndexOps keeps the ACL index in step with a record whose ACL users go
// from those of before to those of after (nil: no record).
func aclIndexOps(before, after *Secret) []store.Op {
	old, cur := aclEntries(before), aclEntries(after)
	var ops []store.Op
	for _, k := range old {
		if !slices.Contains(cur, k) {
			ops = append(ops, store.Delete(k+before.ID))
		}
	}
	for _, k := range cur {
		if !slices.Contains(old, k) {
			ops = append(ops, store.Put(k+after.ID, []byte(after.Project)))
		}
	}
	return ops
}

// aclEntries are the index prefixes of the users s's ACL names.
func aclEntries(s *Secret) []string {
	if s == nil || s.ACL == nil {
		return nil
	}
	out := make([]string, len(s.ACL.Users))
	for i, u := range s.ACL.Users {
		out[i] = aclUserPrefix(s.ACL.Source, u)
	}
	return out
}

// record is the stored form of a secret.
type record struct {
	*Secret
	Sealed *crypto.Envelope `json:"sealed,omitempty" cbor:"40,keyasint,omitempty"`
}

func (r *record) binding() crypto.Binding {
	return crypto.Binding{SecretID: r.ID, Project: r.Project, Type: string(r.Type)}
}

// loaded is a record with the store version it was read at.
type loaded struct {
	rec     *record
	version int64
}

// load reads a secret by id, whatever its state; NotFound when absent.
func (s *Service) load(ctx context.Context, id string) (loaded, error) {
	project, ok := s.owners.Load(id)
	if !ok {
		kv, err := s.st.Get(ctx, pointerKey(id))
		if errors.Is(err, store.ErrNotFound) {
			return loaded{}, NotFound("Secret not found.")
		} else if err != nil {
			return loaded{}, internal("read", err)
		}
		project = string(kv.Value)
		s.owners.Store(id, project)
	}
	kv, err := s.st.Get(ctx, recordKey(project, id))
	if errors.Is(err, store.ErrNotFound) {
		s.owners.Delete(id)
		s.cache.forget(id)
		return loaded{}, NotFound("Secret not found.")
	} else if err != nil {
		return loaded{}, internal("read", err)
	}
	r, err := s.openRecord(ctx, project, id, kv)
	if err != nil {
		return loaded{}, err
	}
	return loaded{rec: s.dueActivation(r), version: kv.Version}, nil
}

// update applies fn to the current record, as v sees it, and writes it
// back through mutate (mutate.go). fn may return errDelete to remove the
// secret instead, or errUnchanged to write nothing. The quota a delete or
// a removed consumer gives back follows the commit.
func (s *Service) update(ctx context.Context, id string, v View, fn func(r *record) error) (*Secret, error) {
	var out *Secret
	busy := Conflict("secret %s is being changed concurrently; try again", id)
	err := s.mutate(ctx, id, busy, func() (edit, error) {
		l, err := s.read(ctx, id, v)
		if err != nil {
			return edit{}, err
		}
		before := l.rec.Secret
		r := l.rec.clone() // the loaded record may be shared through the cache
		err = fn(r)
		key := recordKey(r.Project, id)
		switch {
		case errors.Is(err, errDelete):
			e := removal(key, l.version, pointerKey(id), r.Project,
				usage{qSecrets: 1, qConsumers: len(before.Consumers)})
			e.id, e.detail, e.after.gone = id, secretDiff(before, nil), id
			e.ops = append(e.ops, aclIndexOps(before, nil)...)
			e.ops = append(e.ops, s.listIndexOps(before, nil)...)
			out = r.Secret
			return e, nil
		case err != nil:
			return edit{}, err
		}
		r.Updated = s.clock()
		b, err := s.encodeRecord(ctx, r, l.version+1)
		if err != nil {
			return edit{}, err
		}
		out = r.Secret
		return edit{
			id: id, detail: secretDiff(before, r.Secret),
			cmps:  []store.Cmp{{Key: key, Version: l.version}},
			ops:   append(append([]store.Op{store.Put(key, b)}, aclIndexOps(before, r.Secret)...), s.listIndexOps(before, r.Secret)...),
			after: settle{project: r.Project, freed: consumersFreed(len(before.Consumers), len(r.Consumers))},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// errDelete is returned by an update function to delete the record.
var errDelete = errors.New("delete")

// kekStore keeps wrapped project KEKs in the store.
type kekStore struct{ st store.Store }

func (k kekStore) LoadKEK(ctx context.Context, project string) ([]byte, error) {
	kv, err := k.st.Get(ctx, kekKey(project))
	if errors.Is(err, store.ErrNotFound) {
		return nil, crypto.ErrKEKNotFound
	}
	return kv.Value, err
}

func (k kekStore) CreateKEK(ctx context.Context, project string, wrapped []byte) ([]byte, error) {
	err := k.st.Txn(ctx, []store.Cmp{{Key: kekKey(project)}}, []store.Op{store.Put(kekKey(project), wrapped)})
	if errors.Is(err, store.ErrConflict) {
		return k.LoadKEK(ctx, project)
	}
	if err != nil {
		return nil, err
	}
	return wrapped, nil
}

// newSecretID returns a UUIDv7: time-ordered, so new records land at the
// end of the store's B+tree instead of on random pages (fewer pages written
// per group commit). It reveals only the creation time, which the secret's
// created field shows anyway; 74 bits stay random.
func newSecretID() string { return uuid.Must(uuid.NewV7()).String() }
