package kms_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/store"
)

var serviceAdmin = kms.Identity{Project: "ops", User: "quota-admin", Roles: []string{kms.RoleServiceAdmin}}

// cinderP1 is Cinder acting for p1 with a token scoped to p1.
var cinderP1 = kms.Identity{Project: "p1", User: "cinder", Roles: []string{kms.RoleCreator}}

// quotaNodes builds n Services sharing one bolt store and root key, as
// nodes sharing an etcd store would: separate memories, one store. They
// all have the default quotas def.
func quotaNodes(t testing.TB, n int, def kms.Quotas) []*kms.Service {
	t.Helper()
	st, root := newStore(t)
	var out []*kms.Service
	for range n {
		out = append(out, newServiceWith(t, kms.Config{Store: st, Master: root, Quotas: def}))
	}
	return out
}

func quotaService(t testing.TB, def kms.Quotas) *kms.Service { return quotaNodes(t, 1, def)[0] }

func createN(t *testing.T, svc *kms.Service, who kms.Identity, n int) []*kms.Secret {
	t.Helper()
	var out []*kms.Secret
	for i := range n {
		sec, err := svc.CreateSecret(ctx, who, kms.CreateRequest{Name: fmt.Sprint("s", i)})
		if err != nil {
			t.Fatalf("secret %d of %d: %v", i+1, n, err)
		}
		out = append(out, sec)
	}
	return out
}

func secretCount(t *testing.T, svc *kms.Service, who kms.Identity) int {
	t.Helper()
	_, total, err := svc.ListSecrets(ctx, who, kms.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// mustQuotaReached checks Barbican's refusal: Forbidden, naming the kind
// and the limit.
func mustQuotaReached(t *testing.T, err error, project string, limit int, kind kms.QuotaKind) {
	t.Helper()
	mustKind(t, err, kms.KindForbidden)
	want := fmt.Sprintf("Quota reached for project %s. Only %d %s are allowed.", project, limit, kind)
	if err.Error() != want {
		t.Fatalf("refusal %q, want %q", err, want)
	}
}

func TestQuotaDefaults(t *testing.T) {
	svc := newService(t)
	q, err := svc.EffectiveQuotas(ctx, observer)
	if err != nil {
		t.Fatal(err)
	}
	want := kms.Quotas{"secrets": -1, "orders": -1, "containers": -1, "consumers": -1, "cas": -1}
	if !maps.Equal(q, want) {
		t.Fatalf("unconfigured defaults %v", q)
	}
	createN(t, svc, creator, 20) // unlimited

	svc = quotaService(t, kms.Quotas{kms.QuotaSecrets: 2, kms.QuotaCAs: -7})
	q, _ = svc.EffectiveQuotas(ctx, creator)
	want = kms.Quotas{"secrets": 2, "orders": -1, "containers": -1, "consumers": -1, "cas": -1}
	if !maps.Equal(q, want) {
		t.Fatalf("configured defaults %v", q)
	}
	createN(t, svc, creator, 2)
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "third"})
	mustQuotaReached(t, err, "p1", 2, kms.QuotaSecrets)
	createN(t, svc, other, 2) // the default is per project
	_, err = svc.CreateSecret(ctx, other, kms.CreateRequest{})
	mustQuotaReached(t, err, "p2", 2, kms.QuotaSecrets)
	if n := secretCount(t, svc, admin); n != 2 {
		t.Fatalf("a refused create wrote: %d secrets", n)
	}

	st, root := newStore(t)
	if _, err := kms.New(kms.Config{Store: st, Master: root, Quotas: kms.Quotas{"transport_keys": 1}}); err == nil {
		t.Fatal("an unknown quota kind was accepted")
	}
}

func TestQuotaProjectOverride(t *testing.T) {
	svc := quotaService(t, kms.Quotas{kms.QuotaSecrets: 1, kms.QuotaOrders: 1})
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 3, kms.QuotaConsumers: 5}); err != nil {
		t.Fatal(err)
	}
	q, _ := svc.EffectiveQuotas(ctx, creator)
	if want := (kms.Quotas{"secrets": 3, "orders": 1, "containers": -1, "consumers": 5, "cas": -1}); !maps.Equal(q, want) {
		t.Fatalf("p1 effective %v", q)
	}
	pq, err := svc.GetProjectQuotas(ctx, serviceAdmin, "p1")
	if err != nil || !maps.Equal(pq.Quotas, kms.Quotas{"secrets": 3, "consumers": 5}) || pq.Project != "p1" || pq.Created.IsZero() {
		t.Fatalf("configured %+v %v", pq, err)
	}
	createN(t, svc, creator, 3)
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{})
	mustQuotaReached(t, err, "p1", 3, kms.QuotaSecrets)
	createN(t, svc, other, 1) // p2 keeps the default
	_, err = svc.CreateSecret(ctx, other, kms.CreateRequest{})
	mustQuotaReached(t, err, "p2", 1, kms.QuotaSecrets)

	// PUT replaces: kinds not given follow the defaults again.
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaOrders: 4}); err != nil {
		t.Fatal(err)
	}
	q, _ = svc.EffectiveQuotas(ctx, creator)
	if q[kms.QuotaSecrets] != 1 || q[kms.QuotaOrders] != 4 || q[kms.QuotaConsumers] != -1 {
		t.Fatalf("after replace %v", q)
	}
	pq2, _ := svc.GetProjectQuotas(ctx, serviceAdmin, "p1")
	if !pq2.Created.Equal(pq.Created) || !maps.Equal(pq2.Quotas, kms.Quotas{"orders": 4}) {
		t.Fatalf("replaced %+v (was %+v)", pq2, pq)
	}
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{})
	mustQuotaReached(t, err, "p1", 1, kms.QuotaSecrets)

	// Delete: the defaults apply; a second delete finds nothing.
	if err := svc.DeleteProjectQuotas(ctx, serviceAdmin, "p1"); err != nil {
		t.Fatal(err)
	}
	mustKind(t, svc.DeleteProjectQuotas(ctx, serviceAdmin, "p1"), kms.KindNotFound)
	_, err = svc.GetProjectQuotas(ctx, serviceAdmin, "p1")
	mustKind(t, err, kms.KindNotFound)
	q, _ = svc.EffectiveQuotas(ctx, creator)
	if q[kms.QuotaOrders] != 1 {
		t.Fatalf("after delete %v", q)
	}
	mustKind(t, svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{"bogus": 1}), kms.KindInvalid)
	mustKind(t, svc.SetProjectQuotas(ctx, serviceAdmin, "a/b", kms.Quotas{}), kms.KindInvalid)
}

func TestQuotaZeroAndUnlimited(t *testing.T) {
	svc := quotaService(t, kms.Quotas{kms.QuotaSecrets: 1})
	// 0: none at all, even in an empty project, on every create path.
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 0}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{})
	mustQuotaReached(t, err, "p1", 0, kms.QuotaSecrets)
	_, err = svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Symmetric}})
	mustQuotaReached(t, err, "p1", 0, kms.QuotaSecrets)
	// -1 (and any negative, stored as -1) lifts the default's bound.
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: -5}); err != nil {
		t.Fatal(err)
	}
	if pq, _ := svc.GetProjectQuotas(ctx, serviceAdmin, "p1"); pq.Quotas[kms.QuotaSecrets] != -1 {
		t.Fatalf("stored %v", pq.Quotas)
	}
	createN(t, svc, creator, 5)
	// Back to the default of 1 with 5 secrets: refused until 4 are gone.
	if err := svc.DeleteProjectQuotas(ctx, serviceAdmin, "p1"); err != nil {
		t.Fatal(err)
	}
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{})
	mustQuotaReached(t, err, "p1", 1, kms.QuotaSecrets)
}

func TestQuotaDeleteFreesRoom(t *testing.T) {
	svc := quotaService(t, kms.Quotas{kms.QuotaSecrets: 2, kms.QuotaOrders: 1, kms.QuotaConsumers: 2})
	secs := createN(t, svc, creator, 2)
	_, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{})
	mustQuotaReached(t, err, "p1", 2, kms.QuotaSecrets)
	if err := svc.DeleteSecret(ctx, creator, secs[0].ID, false); err != nil {
		t.Fatal(err)
	}
	secs[0] = createN(t, svc, creator, 1)[0]

	// Consumers: counted on the secret's project, idempotent adds are free.
	c := func(i int) kms.Consumer {
		return kms.Consumer{Service: "volume", ResourceType: "volume", ResourceID: fmt.Sprint("v", i)}
	}
	for i := range 2 {
		if _, err := svc.AddConsumer(ctx, creator, secs[i].ID, c(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.AddConsumer(ctx, creator, secs[0].ID, c(0)); err != nil {
		t.Fatalf("re-adding a consumer: %v", err)
	}
	_, err = svc.AddConsumer(ctx, cinderP1, secs[1].ID, c(9)) // charged to p1, not the service's project
	mustQuotaReached(t, err, "p1", 2, kms.QuotaConsumers)
	if _, _, err := svc.RemoveConsumer(ctx, creator, secs[0].ID, c(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddConsumer(ctx, cinderP1, secs[1].ID, c(9)); err != nil {
		t.Fatal(err)
	}
	// A forced delete frees the secret and its consumers.
	if err := svc.DeleteSecret(ctx, admin, secs[1].ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddConsumer(ctx, creator, secs[0].ID, c(3)); err != nil {
		t.Fatal(err)
	}

	// Orders: the order and its secret count; deleting the order frees
	// the order (its secret stays).
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 10}); err != nil {
		t.Fatal(err)
	}
	o, err := svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderKey, BitLength: 256})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderKey, BitLength: 256})
	mustQuotaReached(t, err, "p1", 1, kms.QuotaOrders)
	if err := svc.DeleteOrder(ctx, creator, o.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderKey, BitLength: 256}); err != nil {
		t.Fatal(err)
	}
	if n := secretCount(t, svc, admin); n != 3 {
		t.Fatalf("%d secrets, want 3", n)
	}
}

// Every path that makes a secret is bounded, and a refused one writes
// nothing.
func TestQuotaEveryCreatePath(t *testing.T) {
	svc := quotaService(t, nil)
	src := storeKey(t, svc, other, kms.CreateRequest{Name: "image key"}) // in p2
	users := []string{"cinder"}
	if _, err := svc.SetACL(ctx, other, src.ID, kms.ACLChange{Users: &users}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 1}); err != nil {
		t.Fatal(err)
	}
	createN(t, svc, creator, 1)
	disk := kms.Consumer{Service: "compute", ResourceType: "instance-disk", ResourceID: "i/disk"}
	for name, create := range map[string]func() error{
		"create": func() error { _, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{}); return err },
		"generate": func() error {
			_, err := svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Passphrase}})
			return err
		},
		"disk": func() error {
			_, err := svc.CreateDiskSecret(ctx, creator, kms.DiskSecretRequest{Disk: disk})
			return err
		},
		"disk for p1 by a service acting for p1": func() error {
			_, err := svc.CreateDiskSecret(ctx, cinderP1, kms.DiskSecretRequest{Disk: disk, Project: "p1"})
			return err
		},
		"key order": func() error {
			_, err := svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderKey, BitLength: 256})
			return err
		},
		"disk order": func() error {
			_, err := svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderPassphrase, Consumer: &disk})
			return err
		},
		"clone into p1": func() error {
			_, err := svc.CloneSecret(ctx, cinderP1, src.ID, kms.CloneRequest{Project: "p1", Consumer: &volume1})
			return err
		},
	} {
		mustQuotaReached(t, create(), "p1", 1, kms.QuotaSecrets)
		if n := secretCount(t, svc, admin); n != 1 {
			t.Fatalf("%s: refused, but p1 has %d secrets", name, n)
		}
		if os, _, _ := svc.ListOrders(ctx, admin, kms.OrderQuery{}); len(os) != 0 {
			t.Fatalf("%s: refused, but an order was written", name)
		}
	}
	// A consumer quota bounds the secrets that come with their consumer.
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaConsumers: 0}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.CreateDiskSecret(ctx, creator, kms.DiskSecretRequest{Disk: disk})
	mustQuotaReached(t, err, "p1", 0, kms.QuotaConsumers)
	_, err = svc.CloneSecret(ctx, cinderP1, src.ID, kms.CloneRequest{Project: "p1", Consumer: &volume1})
	mustQuotaReached(t, err, "p1", 0, kms.QuotaConsumers)
	if _, err := svc.CloneSecret(ctx, cinderP1, src.ID, kms.CloneRequest{Project: "p1"}); err != nil {
		t.Fatalf("a clone without consumer: %v", err)
	}
}

func TestQuotaServiceAdminOnly(t *testing.T) {
	svc := newService(t)
	svcUser := kms.Identity{Project: "service", User: "nova", Roles: []string{"service"}}
	for _, who := range []kms.Identity{admin, creator, observer, svcUser} {
		mustKind(t, svc.SetProjectQuotas(ctx, who, "p1", kms.Quotas{kms.QuotaSecrets: 1}), kms.KindForbidden)
		_, err := svc.GetProjectQuotas(ctx, who, "p1")
		mustKind(t, err, kms.KindForbidden)
		_, _, err = svc.ListProjectQuotas(ctx, who, 0, 10)
		mustKind(t, err, kms.KindForbidden)
		mustKind(t, svc.DeleteProjectQuotas(ctx, who, "p1"), kms.KindForbidden)
	}
	// Reading one's own effective quotas takes any role in the project.
	for _, who := range []kms.Identity{admin, creator, observer, auditor, serviceAdmin} {
		if _, err := svc.EffectiveQuotas(ctx, who); err != nil {
			t.Fatalf("%v: %v", who.Roles, err)
		}
	}
	_, err := svc.EffectiveQuotas(ctx, kms.Identity{Project: "p1", User: "x", Roles: []string{"reader-of-nothing"}})
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.EffectiveQuotas(ctx, kms.Identity{Project: "a/b", Roles: []string{kms.RoleAdmin}})
	mustKind(t, err, kms.KindUnauthenticated)

	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 1}); err != nil {
		t.Fatal(err)
	}
	// A service admin's own creates are bounded like anyone's.
	createN(t, svc, kms.Identity{Project: "p1", User: "sa", Roles: []string{kms.RoleServiceAdmin, kms.RoleAdmin}}, 1)
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{})
	mustQuotaReached(t, err, "p1", 1, kms.QuotaSecrets)
}

func TestQuotaListProjectQuotas(t *testing.T) {
	svc := newService(t)
	for i, p := range []string{"zeta", "alpha", "mid"} {
		if err := svc.SetProjectQuotas(ctx, serviceAdmin, p, kms.Quotas{kms.QuotaSecrets: i}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	// Updating keeps the original creation time, hence the place.
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "zeta", kms.Quotas{kms.QuotaOrders: 7}); err != nil {
		t.Fatal(err)
	}
	all, total, err := svc.ListProjectQuotas(ctx, serviceAdmin, 0, 0)
	if err != nil || total != 3 || len(all) != 3 {
		t.Fatalf("list %v %d %v", all, total, err)
	}
	if all[0].Project != "zeta" || all[1].Project != "alpha" || all[2].Project != "mid" || all[0].Quotas[kms.QuotaOrders] != 7 {
		t.Fatalf("order %s %s %s", all[0].Project, all[1].Project, all[2].Project)
	}
	page, total, _ := svc.ListProjectQuotas(ctx, serviceAdmin, 1, 1)
	if total != 3 || len(page) != 1 || page[0].Project != "alpha" {
		t.Fatalf("page %v total %d", page, total)
	}
	if page, _, _ := svc.ListProjectQuotas(ctx, serviceAdmin, 9, 1); len(page) != 0 {
		t.Fatalf("past the end %v", page)
	}
}

// 50 concurrent creates against a quota of 10 make exactly 10: the check
// and the write of one project's creates are serialized in the process.
func TestQuotaConcurrentCreates(t *testing.T) {
	svc := quotaService(t, nil)
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 10, kms.QuotaOrders: 10, kms.QuotaConsumers: 10}); err != nil {
		t.Fatal(err)
	}
	run := func(n int, f func(i int) error) (ok int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range n {
			wg.Go(func() {
				err := f(i)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case kms.KindOf(err) != kms.KindForbidden:
					t.Errorf("create %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		return ok
	}
	if ok := run(50, func(int) error { _, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{}); return err }); ok != 10 {
		t.Fatalf("%d of 50 creates succeeded under a quota of 10", ok)
	}
	if n := secretCount(t, svc, admin); n != 10 {
		t.Fatalf("%d secrets stored", n)
	}
	// Consumers, added concurrently to the ten secrets.
	secs, _, _ := svc.ListSecrets(ctx, admin, kms.ListQuery{})
	ok := run(50, func(i int) error {
		_, err := svc.AddConsumer(ctx, creator, secs[i%len(secs)].ID,
			kms.Consumer{Service: "volume", ResourceType: "volume", ResourceID: fmt.Sprint("v", i)})
		return err
	})
	if ok != 10 {
		t.Fatalf("%d of 50 consumers added under a quota of 10", ok)
	}
	// Orders, with their secrets under a fresh secrets bound.
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 15, kms.QuotaOrders: 10}); err != nil {
		t.Fatal(err)
	}
	ok = run(50, func(int) error {
		_, err := svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderKey, BitLength: 256})
		return err
	})
	if n := secretCount(t, svc, admin); ok != 5 || n != 15 {
		t.Fatalf("%d of 50 orders succeeded, %d secrets (want 5, 15)", ok, n)
	}
}

// Nodes sharing a store: each counts in its own memory; a node's
// creates and deletes reach another's decision through the recounts.
func TestQuotaAcrossNodes(t *testing.T) {
	nodes := quotaNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	if err := a.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 3}); err != nil {
		t.Fatal(err)
	}
	// b reads the configuration when it first needs it.
	createN(t, a, creator, 1)
	createN(t, b, creator, 1)
	// a's count says 1, so its next create goes through unchecked (the
	// project now holds 3); the one after would take a's last slot, so a
	// recounts, finds 3 and refuses: no overshoot.
	mine := createN(t, a, creator, 1)
	_, err := a.CreateSecret(ctx, creator, kms.CreateRequest{})
	mustQuotaReached(t, err, "p1", 3, kms.QuotaSecrets)
	_, err = b.CreateSecret(ctx, creator, kms.CreateRequest{})
	mustQuotaReached(t, err, "p1", 3, kms.QuotaSecrets)
	// b deletes one: a, which refused a moment ago, trusts its count
	// for a second, then recounts and finds the room.
	if err := b.DeleteSecret(ctx, creator, mine[0].ID, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := a.CreateSecret(ctx, creator, kms.CreateRequest{})
		if err == nil {
			break
		}
		mustKind(t, err, kms.KindForbidden)
		if time.Now().After(deadline) {
			t.Fatal("a never saw b's delete")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := secretCount(t, a, admin); n != 3 {
		t.Fatalf("%d secrets, want 3", n)
	}
}

// memStore is a store.Store in memory, without fsync: benchmarks of the
// create path measure its CPU, not the disk.
type memStore struct {
	mu sync.Mutex
	kv map[string]store.KV
}

func newMemStore() *memStore { return &memStore{kv: map[string]store.KV{}} }

func (m *memStore) Get(_ context.Context, key string) (store.KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kv, ok := m.kv[key]
	if !ok {
		return store.KV{}, store.ErrNotFound
	}
	return kv, nil
}

func (m *memStore) List(_ context.Context, prefix, after string, limit int) ([]store.KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.KV
	for k, kv := range m.kv {
		if strings.HasPrefix(k, prefix) && k >= prefix+after {
			out = append(out, kv)
		}
	}
	slices.SortFunc(out, func(a, b store.KV) int { return strings.Compare(a.Key, b.Key) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *memStore) Txn(_ context.Context, cmps []store.Cmp, ops []store.Op) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range cmps {
		if m.kv[c.Key].Version != c.Version {
			return store.ErrConflict
		}
	}
	for _, op := range ops {
		if op.Delete {
			delete(m.kv, op.Key)
			continue
		}
		m.kv[op.Key] = store.KV{Key: op.Key, Value: op.Value, Version: m.kv[op.Key].Version + 1}
	}
	return nil
}

func (m *memStore) Close() error { return nil }

// BenchmarkCreateSecretQuota is the kms create path on a store in memory:
// with no quota anywhere, with a quota on another project only (neither
// counts anything), and with a finite quota on the creating project (the
// count in memory, recounted every quotaCountMaxAge).
func BenchmarkCreateSecretQuota(b *testing.B) {
	_, root := newStore(b)
	for _, bc := range []struct {
		name string
		set  map[string]kms.Quotas
	}{
		{"none", nil},
		{"other-project", map[string]kms.Quotas{"p9": {kms.QuotaSecrets: 5}}},
		{"finite", map[string]kms.Quotas{"p1": {kms.QuotaSecrets: 1 << 30}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			svc := newServiceWith(b, kms.Config{Store: newMemStore(), Master: root})
			for p, q := range bc.set {
				if err := svc.SetProjectQuotas(ctx, serviceAdmin, p, q); err != nil {
					b.Fatal(err)
				}
			}
			req := kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", BitLength: 256,
				Payload: make([]byte, 32), ContentType: "application/octet-stream"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.CreateSecret(ctx, creator, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
