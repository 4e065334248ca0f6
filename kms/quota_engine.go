package kms

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The quota engine: usage, holds, the configuration snapshot and the
// counts behind Quotas (quotas.go); the admin API is in quota_admin.go.
//
// Cost: creates consult an in-memory snapshot of the configured quotas (an
// atomic load and a map lookup) and count nothing unless a finite quota
// applies to the project and kind. Then the project's count is kept in
// memory, initialised lazily from the store and maintained by this
// process's creates and deletes.
//
// Exactness: within one process the limit is exact: creates reserve their
// slot under a per-project mutex, and the create that would take the last
// free slot (or is about to be refused) waits for the reservations in
// flight to land and recounts from the store (holdQuota), so 50 concurrent
// creates against a quota of 10 make exactly 10. The recount also
// corrects any drift of the count in memory: deletes by another node on a
// shared etcd store, or by orphan collection, which does not report here.
// Across nodes sharing a store it is not: Barbican's own check is racy
// (count, then insert, with no lock between workers), and here each node
// also counts in its own memory. A node sees other nodes' creates when it
// recounts: at the latest quotaCountMaxAge after its last count, and
// always before taking what it believes is the last slot. So during a
// burst of creates in one project on several nodes at once, the project
// may exceed its quota by what the other nodes created within that window;
// once over, every node refuses until it is back under. A node applies
// another node's quota changes within quotaConfigMaxAge.

// The kinds enforced here, as indexes of the arrays below.
const (
	qSecrets = iota
	qOrders
	qConsumers
	qContainers
	nEnforced
)

var enforcedKinds = [nEnforced]QuotaKind{QuotaSecrets, QuotaOrders, QuotaConsumers, QuotaContainers}

// oneOfEach is a usage of every enforced kind: whether any finite limit
// applies at all.
var oneOfEach = func() (u usage) {
	for k := range u {
		u[k] = 1
	}
	return u
}()

// limits are effective limits of the enforced kinds; usage is how many of
// each a create adds or a delete frees.
type (
	limits [nEnforced]int
	usage  [nEnforced]int
)

// binds reports whether a finite limit applies to something u adds.
func (l *limits) binds(u usage) bool {
	for k, n := range u {
		if n > 0 && l[k] >= 0 {
			return true
		}
	}
	return false
}

// Tunables (variables for the tests).
var (
	// quotaConfigMaxAge bounds how long a node enforces a project quota
	// configuration it read before rereading (another node may change it).
	quotaConfigMaxAge = 10 * time.Second
	// quotaCountMaxAge bounds how long a count is trusted before it is
	// recounted from the store (another node may create): the window of
	// the cross-node overshoot, against one scan of the project per
	// period while it creates.
	quotaCountMaxAge = 2 * time.Second
	// quotaRefusalRecount: a refusal recounts only if the count is older
	// than this, so a client hammering a full project does not make every
	// refused request scan the project.
	quotaRefusalRecount = time.Second
)

// quotaState is a Service's quota configuration and counts.
type quotaState struct {
	defaults Quotas // every kind, normalized
	defLim   limits

	mu     sync.Mutex // serializes snapshot reloads and local changes
	snap   atomic.Pointer[quotaSnapshot]
	counts sync.Map // project → *projectCounts
}

// quotaSnapshot is the configured project quotas as last read.
type quotaSnapshot struct {
	loaded    time.Time
	projects  map[string]limits // effective limits of projects with a configuration
	anyFinite bool              // some finite limit applies somewhere
}

// projectCounts is one project's usage as this process knows it.
type projectCounts struct {
	// mu guards the reservations and the count times, and is held by
	// recounts; deletes only decrement n (atomically), without waiting.
	mu      sync.Mutex
	drained sync.Cond // on mu: a reservation ended
	c       [nEnforced]kindCount
}

type kindCount struct {
	n        atomic.Int64 // written creates and deletes, as last counted and since maintained
	reserved int          // creates checked but not yet written or failed
	at       time.Time    // last counted from the store (zero: unknown)
}

func newProjectCounts() *projectCounts {
	pc := &projectCounts{}
	pc.drained.L = &pc.mu
	return pc
}

func newQuotaState(defaults Quotas) (*quotaState, error) {
	d, err := defaults.normalize()
	if err != nil {
		return nil, fmt.Errorf("kms: quotas: %w", err)
	}
	for _, k := range QuotaKinds {
		if _, ok := d[k]; !ok {
			d[k] = Unlimited
		}
	}
	q := &quotaState{defaults: d}
	for i, k := range enforcedKinds {
		q.defLim[i] = d[k]
	}
	return q, nil
}

// effective merges a project's configured quotas over the defaults.
func (q *quotaState) effective(configured Quotas) Quotas {
	out := make(Quotas, len(QuotaKinds))
	for _, k := range QuotaKinds {
		out[k] = q.defaults[k]
		if v, ok := configured[k]; ok {
			out[k] = v
		}
	}
	return out
}

func (q *quotaState) limitsOf(configured Quotas) limits {
	l := q.defLim
	for i, k := range enforcedKinds {
		if v, ok := configured[k]; ok {
			l[i] = v
		}
	}
	return l
}

// quotaSnapshot returns the configured project quotas, reading them from the
// store the first time and again once they are older than
// quotaConfigMaxAge (one caller rereads; the others keep the old snapshot
// meanwhile).
func (s *Service) quotaSnapshot(ctx context.Context) (*quotaSnapshot, error) {
	q := s.quotas
	snap := q.snap.Load()
	if snap != nil && time.Since(snap.loaded) < quotaConfigMaxAge {
		return snap, nil
	}
	if snap != nil {
		if !q.mu.TryLock() {
			return snap, nil
		}
	} else {
		q.mu.Lock()
	}
	defer q.mu.Unlock()
	if cur := q.snap.Load(); cur != snap {
		return cur, nil // another caller reloaded meanwhile
	}
	next, err := s.loadQuotaSnapshot(ctx)
	if err != nil {
		if snap == nil {
			return nil, err
		}
		// Keep enforcing what was read; try again after another period.
		stale := *snap
		stale.loaded = time.Now()
		q.snap.Store(&stale)
		return snap, nil
	}
	if snap != nil {
		for p, l := range next.projects {
			if old, ok := snap.projects[p]; !ok || old != l {
				q.forgetCounts(p)
			}
		}
		for p := range snap.projects {
			if _, ok := next.projects[p]; !ok {
				q.forgetCounts(p)
			}
		}
	}
	q.snap.Store(next)
	return next, nil
}

func (s *Service) loadQuotaSnapshot(ctx context.Context) (*quotaSnapshot, error) {
	all, err := s.allProjectQuotas(ctx)
	if err != nil {
		return nil, err
	}
	q := s.quotas
	snap := &quotaSnapshot{loaded: time.Now(), projects: make(map[string]limits, len(all)),
		anyFinite: q.defLim.binds(oneOfEach)}
	for _, pq := range all {
		l := q.limitsOf(pq.Quotas)
		snap.projects[pq.Project] = l
		snap.anyFinite = snap.anyFinite || l.binds(oneOfEach)
	}
	return snap, nil
}

// setSnapshotProject applies a local change (nil: configuration deleted)
// to the snapshot at once, so this node enforces it without waiting.
func (s *Service) setSnapshotProject(ctx context.Context, project string, configured Quotas) {
	q := s.quotas
	if _, err := s.quotaSnapshot(ctx); err != nil {
		q.forgetCounts(project)
		return // loaded later, from the store, change included
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	snap := q.snap.Load()
	next := &quotaSnapshot{loaded: snap.loaded, projects: make(map[string]limits, len(snap.projects)+1),
		anyFinite: q.defLim.binds(oneOfEach)}
	for p, l := range snap.projects {
		if p != project {
			next.projects[p] = l
			next.anyFinite = next.anyFinite || l.binds(oneOfEach)
		}
	}
	if configured != nil {
		l := q.limitsOf(configured)
		next.projects[project] = l
		next.anyFinite = next.anyFinite || l.binds(oneOfEach)
	}
	q.snap.Store(next)
	q.forgetCounts(project)
}

// forgetCounts makes the project's next check recount: while no finite
// quota applied, its creates were not counted.
func (q *quotaState) forgetCounts(project string) {
	v, ok := q.counts.Load(project)
	if !ok {
		return
	}
	pc := v.(*projectCounts)
	pc.mu.Lock()
	for i := range pc.c {
		pc.c[i].at = time.Time{}
	}
	pc.mu.Unlock()
}

// quotaHold is a create's reservation, from its quota check to its write.
// The zero hold (no finite quota applies) does nothing.
type quotaHold struct {
	pc *projectCounts
	u  usage // what is reserved: the bounded kinds of the create's usage
}

// holdQuota checks that project may add u and, when a finite quota
// applies, reserves it: the caller writes, then calls release with whether
// the write succeeded. Exceeding is Forbidden and nothing must be written.
//
// Far from the limit, creates only reserve (a short critical section) and
// write in parallel, so the store still commits them in groups. The
// create that would take the last free slot, or is about to be refused,
// first waits for the reservations in flight to land, then recounts from
// the store with none in flight: that is what makes the limit exact within
// one process, and what corrects the drift of the count in memory.
func (s *Service) holdQuota(ctx context.Context, project string, u usage) (quotaHold, error) {
	snap, err := s.quotaSnapshot(ctx)
	if err != nil {
		return quotaHold{}, err
	}
	if !snap.anyFinite {
		return quotaHold{}, nil
	}
	lim, ok := snap.projects[project]
	if !ok {
		lim = s.quotas.defLim
	}
	if !lim.binds(u) {
		return quotaHold{}, nil
	}
	var bounded usage
	for k, n := range u {
		if lim[k] >= 0 {
			bounded[k] = n
		}
	}
	v, ok := s.quotas.counts.Load(project)
	if !ok {
		v, _ = s.quotas.counts.LoadOrStore(project, newProjectCounts())
	}
	pc := v.(*projectCounts)
	pc.mu.Lock()
	defer pc.mu.Unlock()
check:
	for k, n := range bounded {
		if n == 0 {
			continue
		}
		fits, err := s.checkQuota(ctx, project, pc, k, lim[k], n)
		if err != nil {
			return quotaHold{}, err
		}
		if !fits { // creates in flight must land first; pc.mu was released meanwhile
			pc.drained.Wait()
			goto check
		}
	}
	for k, n := range bounded {
		pc.c[k].reserved += n
	}
	return quotaHold{pc: pc, u: bounded}, nil
}

// checkQuota decides whether n more of kind k fit under limit, with pc.mu
// held; false: wait for the reservations in flight, then ask again. The
// count in memory is trusted while it leaves room after this create;
// taking the last slot, or being refused, recounts first.
func (s *Service) checkQuota(ctx context.Context, project string, pc *projectCounts, k, limit, n int) (bool, error) {
	refuse := func() (bool, error) {
		return false, Forbidden("Quota reached for project %s. Only %d %s are allowed.", project, limit, enforcedKinds[k])
	}
	if limit == 0 {
		return refuse()
	}
	c := &pc.c[k]
	now := time.Now()
	if !c.at.IsZero() && now.Sub(c.at) < quotaCountMaxAge {
		have := int(c.n.Load())
		if have+c.reserved+n < limit {
			return true, nil
		}
		if have+n > limit && now.Sub(c.at) < quotaRefusalRecount {
			return refuse()
		}
	}
	if c.reserved > 0 {
		return false, nil
	}
	have, err := s.countUsage(ctx, project, k)
	if err != nil {
		return false, err
	}
	c.n.Store(int64(have))
	c.at = now
	if have+n > limit {
		return refuse()
	}
	return true, nil
}

// release ends a reservation; ok says the write happened, and the counts
// that are being kept take what it added.
func (h quotaHold) release(ok bool) {
	if h.pc == nil {
		return
	}
	h.pc.mu.Lock()
	for k, n := range h.u {
		c := &h.pc.c[k]
		c.reserved -= n
		if ok && n > 0 && !c.at.IsZero() {
			c.n.Add(int64(n))
		}
	}
	h.pc.mu.Unlock()
	h.pc.drained.Broadcast()
}

// quotaFreed tells the counts that project freed u (a delete committed).
// It does not wait for creates in flight.
func (s *Service) quotaFreed(project string, u usage) {
	v, ok := s.quotas.counts.Load(project)
	if !ok {
		return
	}
	pc := v.(*projectCounts)
	for k, n := range u {
		if n > 0 {
			pc.c[k].n.Add(-int64(n))
		}
	}
}

// countUsage counts a project's usage of kind k in the store.
func (s *Service) countUsage(ctx context.Context, project string, k int) (int, error) {
	switch k {
	case qOrders:
		return s.countKeys(ctx, orderPrefix(project), nil)
	case qContainers:
		return s.countKeys(ctx, containerPrefix(project), nil)
	case qConsumers:
		weigh := recordConsumers
		onSecrets, err := s.countKeys(ctx, projectPrefix(project), weigh)
		if err != nil {
			return 0, err
		}
		onContainers, err := s.countKeys(ctx, containerPrefix(project), weigh)
		return onSecrets + onContainers, err
	default:
		return s.countKeys(ctx, projectPrefix(project), nil)
	}
}

// countKeys counts the entries under prefix, a page at a time; each
// counts weigh(value), or 1 when weigh is nil.
func (s *Service) countKeys(ctx context.Context, prefix string, weigh func([]byte) (int, error)) (int, error) {
	n, after := 0, ""
	for {
		kvs, err := s.st.List(ctx, prefix, after, scanPage)
		if err != nil {
			return 0, internal("count", err)
		}
		for _, kv := range kvs {
			if weigh == nil {
				n++
				continue
			}
			w, err := weigh(kv.Value)
			if err != nil {
				return 0, internal("decode", err)
			}
			n += w
		}
		if len(kvs) < scanPage {
			return n, nil
		}
		after = kvs[len(kvs)-1].Key[len(prefix):] + "\x00"
	}
}
