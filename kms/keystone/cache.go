package keystone

import (
	"slices"
	"sync"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// entry is Keystone's verdict on one token: an identity, or an error
// (invalid, not project-scoped), with what revocation events match on.
type entry struct {
	id  kms.Identity
	err error

	until   time.Time // cached until
	expires time.Time // the token's own expiry

	issued      time.Time
	audit       []string // audit_ids: the token's own, then its chain's
	user        string
	userDomain  string
	project     string
	scopeDomain string // the project's domain, or the domain scope
	roleIDs     []string
	trust       string
	trustor     string
	trustee     string
}

func (e *entry) result() (kms.Identity, error) {
	if e.err != nil {
		return kms.Identity{}, e.err
	}
	return e.id, nil
}

// cache maps sha256(token) to Keystone's verdict. Bounded: when full, the
// expired entries go, and if none had, everything does (refilled by the
// next validations).
type cache struct {
	mu  sync.RWMutex
	m   map[[32]byte]*entry
	max int
}

func newCache(max int) *cache { return &cache{m: map[[32]byte]*entry{}, max: max} }

func (c *cache) get(key [32]byte, now time.Time) (*entry, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e, true
}

func (c *cache) put(key [32]byte, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		now := time.Now()
		for k, old := range c.m {
			if !now.Before(old.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[key] = e
}

// evict drops the valid entries an event matches; it returns how many.
func (c *cache) evict(ev *event) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, e := range c.m {
		if e.err == nil && ev.matches(e) {
			delete(c.m, k)
			n++
		}
	}
	return n
}

// flight coalesces concurrent validations of one token into one Keystone
// call (a singleflight keyed by the token's hash).
type flight struct {
	mu    sync.Mutex
	calls map[[32]byte]*call
}

type call struct {
	done chan struct{}
	e    *entry
}

func (f *flight) do(key [32]byte, fn func() *entry) *entry {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.e
	}
	if f.calls == nil {
		f.calls = map[[32]byte]*call{}
	}
	c := &call{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.e = fn()
	return c.e
}

// event is one Keystone revocation event. Fields Keywarden does not track
// (consumer_id, access_token_id, expires_at) are not read: an event then
// matches more tokens than it revokes, which only costs those tokens one
// more validation, never a revoked token accepted.
type event struct {
	AuditID       string `json:"audit_id"`
	AuditChainID  string `json:"audit_chain_id"`
	UserID        string `json:"user_id"`
	ProjectID     string `json:"project_id"`
	DomainID      string `json:"domain_id"`
	DomainScopeID string `json:"domain_scope_id"`
	RoleID        string `json:"role_id"`
	TrustID       string `json:"trust_id"`
	IssuedBefore  Time   `json:"issued_before"`
	RevokedAt     Time   `json:"revoked_at"`

	seen time.Time // when Keywarden received it (set by revocations.add)
}

// matches: every attribute the event names matches the token's, and the
// token was issued no later than issued_before (Keystone's own rule).
func (ev *event) matches(e *entry) bool {
	switch {
	case ev.UserID != "" && ev.UserID != e.user && ev.UserID != e.trustor && ev.UserID != e.trustee,
		ev.DomainID != "" && ev.DomainID != e.userDomain && ev.DomainID != e.scopeDomain,
		ev.DomainScopeID != "" && ev.DomainScopeID != e.scopeDomain,
		ev.ProjectID != "" && ev.ProjectID != e.project,
		ev.RoleID != "" && !slices.Contains(e.roleIDs, ev.RoleID),
		ev.TrustID != "" && ev.TrustID != e.trust,
		ev.AuditID != "" && !slices.Contains(e.audit, ev.AuditID),
		ev.AuditChainID != "" && !slices.Contains(e.audit, ev.AuditChainID),
		!ev.IssuedBefore.IsZero() && e.issued.After(ev.IssuedBefore.Time):
		return false
	}
	return true
}

// revocations keeps the events received lately, so that a validation that
// was in flight while one arrived is not cached past it.
type revocations struct {
	mu     sync.Mutex
	recent []*event
}

const keepEvents = time.Minute

func (r *revocations) add(evs []*event, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := r.recent[:0]
	for _, ev := range r.recent {
		if now.Sub(ev.seen) < keepEvents {
			keep = append(keep, ev)
		}
	}
	for _, ev := range evs {
		ev.seen = now
	}
	r.recent = append(keep, evs...)
}

// revokedSince reports whether an event received after since matches e.
func (r *revocations) revokedSince(e *entry, since time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.recent {
		if !ev.seen.Before(since) && ev.matches(e) {
			return true
		}
	}
	return false
}
