package kms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// memAudit keeps audit records in memory.
type memAudit struct {
	mu   sync.Mutex
	recs []kms.AuditRecord
	// down makes Commit fail: an audit device that cannot write, a fault
	// the kms tests cannot cause otherwise (tests/e2e fills a real disk).
	down bool
}

func (m *memAudit) Record(_ context.Context, r kms.AuditRecord) {
	m.mu.Lock()
	m.recs = append(m.recs, r)
	m.mu.Unlock()
}

func (m *memAudit) Commit(_ context.Context, r kms.AuditRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("audit disk full")
	}
	m.recs = append(m.recs, r)
	return nil
}

func (m *memAudit) setDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}

// actions returns "action:outcome" of each record about id, in order.
func (m *memAudit) actions(id string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.recs {
		if r.SecretID == id {
			out = append(out, r.Action+":"+r.Outcome)
		}
	}
	return out
}

// all returns every record, in order.
func (m *memAudit) all() []kms.AuditRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs)
}

// users returns the user of each record about id, in order.
func (m *memAudit) users(id string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.recs {
		if r.SecretID == id {
			out = append(out, r.User)
		}
	}
	return out
}

// newAudited is newService with an in-memory audit trail and, when now is
// set, a controllable clock.
func newAudited(t testing.TB, now func() time.Time) (*kms.Service, *memAudit) {
	t.Helper()
	a := &memAudit{}
	return newServiceWith(t, kms.Config{Audit: a, Now: now}), a
}

var (
	image1  = kms.Consumer{Service: "image", ResourceType: "image", ResourceID: "img-1"}
	volume1 = kms.Consumer{Service: "volume", ResourceType: "volume", ResourceID: "vol-1"}
	// service holds the role OpenStack services once used to reach into
	// other projects; it is an ordinary role now and grants nothing there.
	service = kms.Identity{Project: "service", User: "cinder", Roles: []string{"service", kms.RoleAdmin}}
)

func storeKey(t *testing.T, svc *kms.Service, who kms.Identity, req kms.CreateRequest) *kms.Secret {
	t.Helper()
	if req.Payload == nil {
		req.Payload, req.ContentType = []byte("correct horse battery staple"), "text/plain"
		if req.Type == "" {
			req.Type = kms.Passphrase
		}
	}
	sec, err := svc.CreateSecret(ctx, who, req)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func TestConsumersIdempotent(t *testing.T) {
	svc, audit := newAudited(t, nil)
	sec := storeKey(t, svc, creator, kms.CreateRequest{Name: "k"})
	for range 2 {
		got, err := svc.AddConsumer(ctx, creator, sec.ID, image1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Consumers) != 1 || !got.Consumers[0].Same(image1) || got.Consumers[0].Created.IsZero() {
			t.Fatalf("consumers %+v", got.Consumers)
		}
	}
	if _, err := svc.AddConsumer(ctx, observer, sec.ID, volume1); err != nil {
		t.Fatalf("a reader may add a consumer (Barbican's rule): %v", err)
	}
	list, total, err := svc.ListConsumers(ctx, auditor, sec.ID, 1, 1)
	if err != nil || total != 2 || len(list) != 1 || !list[0].Same(volume1) {
		t.Fatalf("page: %v total %d %v", list, total, err)
	}
	for range 2 {
		got, destroyed, err := svc.RemoveConsumer(ctx, creator, sec.ID, image1)
		if err != nil || destroyed || len(got.Consumers) != 1 {
			t.Fatalf("remove: %+v %v %v", got, destroyed, err)
		}
	}
	_, err = svc.AddConsumer(ctx, other, sec.ID, image1)
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.AddConsumer(ctx, creator, sec.ID, kms.Consumer{Service: "image"})
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.AddConsumer(ctx, creator, "00000000-0000-0000-0000-000000000000", image1)
	mustKind(t, err, kms.KindNotFound)
	// A service of another project cannot add a consumer (issue 8 #2).
	_, err = svc.AddConsumer(ctx, service, sec.ID, image1)
	mustKind(t, err, kms.KindForbidden)
	want := []string{"create:ok", "consumer_add:ok", "consumer_add:ok", "consumer_add:ok",
		"consumer_remove:ok", "consumer_remove:ok", "consumer_add:forbidden", "consumer_add:invalid", "consumer_add:forbidden"}
	if got := audit.actions(sec.ID); !slices.Equal(got, want) {
		t.Fatalf("audit trail\n got %v\nwant %v", got, want)
	}
}

func TestDeleteGuard(t *testing.T) {
	svc := newService(t)
	sec := storeKey(t, svc, creator, kms.CreateRequest{})
	if _, err := svc.AddConsumer(ctx, creator, sec.ID, volume1); err != nil {
		t.Fatal(err)
	}
	err := svc.DeleteSecret(ctx, creator, sec.ID, false)
	mustKind(t, err, kms.KindConflict)
	if !strings.Contains(err.Error(), "volume/volume/vol-1") {
		t.Fatalf("409 does not name the consumer: %v", err)
	}
	mustKind(t, svc.DeleteSecret(ctx, creator, sec.ID, true), kms.KindForbidden)
	if _, _, err := svc.GetPayload(ctx, creator, sec.ID); err != nil {
		t.Fatalf("refused delete lost the secret: %v", err)
	}
	if err := svc.DeleteSecret(ctx, admin, sec.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = svc.GetSecret(ctx, admin, sec.ID, kms.View{})
	mustKind(t, err, kms.KindNotFound)
}

func TestOnLastConsumer(t *testing.T) {
	svc, audit := newAudited(t, nil)
	sec := storeKey(t, svc, creator, kms.CreateRequest{DeletionPolicy: kms.OnLastConsumer})
	for _, c := range []kms.Consumer{image1, volume1} {
		if _, err := svc.AddConsumer(ctx, creator, sec.ID, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, destroyed, err := svc.RemoveConsumer(ctx, creator, sec.ID, image1); err != nil || destroyed {
		t.Fatalf("first removal: destroyed=%v %v", destroyed, err)
	}
	last, destroyed, err := svc.RemoveConsumer(ctx, creator, sec.ID, volume1)
	if err != nil || !destroyed || len(last.Consumers) != 0 {
		t.Fatalf("last removal: %+v destroyed=%v %v", last, destroyed, err)
	}
	_, _, err = svc.GetPayload(ctx, admin, sec.ID)
	mustKind(t, err, kms.KindNotFound)
	_, _, err = svc.RemoveConsumer(ctx, creator, sec.ID, volume1)
	mustKind(t, err, kms.KindNotFound)
	_, err = svc.AddConsumer(ctx, creator, sec.ID, volume1)
	mustKind(t, err, kms.KindNotFound)
	if got := audit.actions(sec.ID); !slices.Contains(got, "destroy_on_last_consumer:ok") {
		t.Fatalf("destruction not audited: %v", got)
	}
}

// A reader may unregister a consumer but not erase a key by doing so.
func TestOnLastConsumerNeedsDeleteRight(t *testing.T) {
	svc := newService(t)
	sec := storeKey(t, svc, creator, kms.CreateRequest{DeletionPolicy: kms.OnLastConsumer})
	users := []string{"eve"}
	if _, err := svc.SetACL(ctx, creator, sec.ID, kms.ACLChange{Users: &users}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddConsumer(ctx, other, sec.ID, image1); err != nil {
		t.Fatalf("ACL reader adds a consumer: %v", err)
	}
	_, _, err := svc.RemoveConsumer(ctx, other, sec.ID, image1)
	mustKind(t, err, kms.KindForbidden)
	got, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{})
	if err != nil || len(got.Consumers) != 1 {
		t.Fatalf("refused removal changed the secret: %+v %v", got, err)
	}
	// Another project's service cannot remove it either, and the key stays.
	_, _, err = svc.RemoveConsumer(ctx, service, sec.ID, image1)
	mustKind(t, err, kms.KindForbidden)
	if _, destroyed, err := svc.RemoveConsumer(ctx, creator, sec.ID, image1); err != nil || !destroyed {
		t.Fatalf("the owner removes the last consumer: %v %v", destroyed, err)
	}
}

func TestPolicyFromMetadata(t *testing.T) {
	svc := newService(t)
	sec := storeKey(t, svc, creator, kms.CreateRequest{Metadata: map[string]string{
		"os_encrypt_key_deletion_policy": "on_image_deletion", "os_encrypt_format": "LUKSv1",
	}})
	if sec.DeletionPolicy != kms.OnLastConsumer || sec.Encryption == nil || sec.Encryption.Format != kms.FormatLUKS1 {
		t.Fatalf("metadata not applied: policy %q encryption %+v", sec.DeletionPolicy, sec.Encryption)
	}
	_, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{DeletionPolicy: kms.Retain,
		Metadata: map[string]string{"os_encrypt_key_deletion_policy": "on_image_deletion"}})
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{
		Metadata: map[string]string{"os_encrypt_key_deletion_policy": "whenever"}})
	mustKind(t, err, kms.KindInvalid)

	// Set after creation through the metadata API (as Glance-era callers do).
	later := storeKey(t, svc, creator, kms.CreateRequest{})
	if later.EffectivePolicy() != kms.Retain {
		t.Fatalf("default policy %q", later.EffectivePolicy())
	}
	if err := svc.SetMetadatum(ctx, creator, later.ID, "cinder_encryption_key_deletion_policy", "on_image_deletion", true); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddConsumer(ctx, creator, later.ID, image1); err != nil {
		t.Fatal(err)
	}
	if _, destroyed, err := svc.RemoveConsumer(ctx, creator, later.ID, image1); err != nil || !destroyed {
		t.Fatalf("policy from later metadata: destroyed=%v %v", destroyed, err)
	}
}

// Flow 4: concurrent add-consumer, delete and clone on one secret never
// leave a consumer on a deleted secret nor delete a secret in use.
func TestRaceAddDeleteClone(t *testing.T) {
	svc := newService(t)
	for round := range 4 {
		sec := storeKey(t, svc, creator, kms.CreateRequest{Name: fmt.Sprint("race-", round)})
		_, material, err := svc.GetPayload(ctx, creator, sec.ID)
		if err != nil {
			t.Fatal(err)
		}
		const n = 50
		var (
			wg                sync.WaitGroup
			mu                sync.Mutex
			added             []kms.Consumer
			deletes, addFails int
			clones            []*kms.Secret
		)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				switch i % 3 {
				case 0:
					c := kms.Consumer{Service: "compute", ResourceType: "instance", ResourceID: fmt.Sprint("vm-", i)}
					_, err := svc.AddConsumer(ctx, creator, sec.ID, c)
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						added = append(added, c)
					} else if kms.KindOf(err) == kms.KindNotFound {
						addFails++
					} else {
						t.Errorf("add: %v", err)
					}
				case 1:
					err := svc.DeleteSecret(ctx, creator, sec.ID, false)
					mu.Lock()
					defer mu.Unlock()
					switch kms.KindOf(err) {
					case kms.KindConflict, kms.KindNotFound:
					default:
						if err != nil {
							t.Errorf("delete: %v", err)
						} else {
							deletes++
						}
					}
				case 2:
					vol := kms.Consumer{Service: "volume", ResourceType: "volume", ResourceID: fmt.Sprint("v-", i)}
					cl, err := svc.CloneSecret(ctx, creator, sec.ID, kms.CloneRequest{Consumer: &vol})
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						clones = append(clones, cl)
					} else if kms.KindOf(err) != kms.KindNotFound {
						t.Errorf("clone: %v", err)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if deletes > 1 {
			t.Fatalf("round %d: deleted %d times", round, deletes)
		}
		got, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{})
		switch {
		case deletes == 1 && len(added) > 0:
			t.Fatalf("round %d: deleted although %d consumers were added", round, len(added))
		case deletes == 1:
			mustKind(t, err, kms.KindNotFound)
		case err != nil:
			t.Fatalf("round %d: secret lost without a delete: %v", round, err)
		case len(got.Consumers) != len(added):
			t.Fatalf("round %d: %d consumers on the secret, %d adds succeeded", round, len(got.Consumers), len(added))
		}
		for _, cl := range clones {
			got, pt, err := svc.GetPayload(ctx, creator, cl.ID)
			if err != nil || !bytes.Equal(pt, material) || got.ClonedFrom != sec.ID || len(got.Consumers) != 1 {
				t.Fatalf("round %d: clone %s: %+v %v", round, cl.ID, got, err)
			}
		}
		t.Logf("round %d: %d adds, %d failed adds, %d deletes, %d clones", round, len(added), addFails, deletes, len(clones))
	}
}

// Flow 4 with a deletion policy: consumers come and go concurrently while
// one pinned consumer stays; the secret must survive every removal and every
// unforced delete, and go only when the pin goes.
func TestRaceOnLastConsumer(t *testing.T) {
	svc := newService(t)
	sec := storeKey(t, svc, creator, kms.CreateRequest{DeletionPolicy: kms.OnLastConsumer})
	pin := kms.Consumer{Service: "image", ResourceType: "image", ResourceID: "pinned"}
	if _, err := svc.AddConsumer(ctx, creator, sec.ID, pin); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%5 == 0 {
				mustKind(t, svc.DeleteSecret(ctx, creator, sec.ID, false), kms.KindConflict)
				return
			}
			c := kms.Consumer{Service: "compute", ResourceType: "disk", ResourceID: fmt.Sprint("d-", i)}
			if _, err := svc.AddConsumer(ctx, creator, sec.ID, c); err != nil {
				t.Error(err)
				return
			}
			if _, destroyed, err := svc.RemoveConsumer(ctx, creator, sec.ID, c); err != nil || destroyed {
				t.Errorf("remove %v: destroyed=%v %v", c, destroyed, err)
			}
		}()
	}
	wg.Wait()
	got, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{})
	if err != nil || len(got.Consumers) != 1 || !got.Consumers[0].Same(pin) {
		t.Fatalf("after the storm: %+v %v", got, err)
	}
	if _, destroyed, err := svc.RemoveConsumer(ctx, creator, sec.ID, pin); err != nil || !destroyed {
		t.Fatalf("pin removal: %v %v", destroyed, err)
	}
}
