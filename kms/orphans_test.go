package kms_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/kms"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func orphanIDs(os []kms.Orphan) []string {
	var ids []string
	for _, o := range os {
		ids = append(ids, o.Secret.ID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func TestOrphans(t *testing.T) {
	clk := &clock{t: time.Now()}
	svc, audit := newAudited(t, clk.now)
	// unused: on_last_consumer, its consumer never registered (crash between
	// order and attach); used: same policy, in use; kept: retain, unused;
	// elsewhere: another project's unused on_last_consumer secret.
	unused := storeKey(t, svc, creator, kms.CreateRequest{DeletionPolicy: kms.OnLastConsumer})
	used, err := svc.CreateDiskSecret(ctx, creator, kms.DiskSecretRequest{Disk: volume1, DeletionPolicy: kms.OnLastConsumer})
	if err != nil {
		t.Fatal(err)
	}
	kept := storeKey(t, svc, creator, kms.CreateRequest{})
	elsewhere := storeKey(t, svc, other, kms.CreateRequest{Metadata: map[string]string{"os_encrypt_key_deletion_policy": "on_image_deletion"}})
	rule := consumers.OrphanRule{Grace: time.Hour}

	found, err := svc.FindOrphans(ctx, rule)
	if err != nil || len(found) != 0 {
		t.Fatalf("within grace: %v %v", orphanIDs(found), err)
	}
	clk.advance(2 * time.Hour)
	found, _ = svc.FindOrphans(ctx, rule)
	if got, want := orphanIDs(found), sorted(unused.ID, elsewhere.ID); !slices.Equal(got, want) {
		t.Fatalf("orphans %v; want %v", got, want)
	}
	// A retain secret is never an orphan, however long it sat unused
	// (issue 8 #1: DELETE /v1/orphans?older_than=1ns destroyed it).
	clk.advance(10000 * time.Hour)
	older := consumers.OrphanRule{Grace: time.Hour, OlderThan: time.Hour}
	found, _ = svc.FindOrphans(ctx, older)
	if got, want := orphanIDs(found), sorted(unused.ID, elsewhere.ID); !slices.Equal(got, want) {
		t.Fatalf("with --older-than: %v; want %v", got, want)
	}
	// Below the floor (orphans.min_age, 1 h by default): refused.
	for _, r := range []consumers.OrphanRule{{OlderThan: time.Nanosecond}, {Grace: time.Minute}} {
		_, err := svc.FindOrphans(ctx, r)
		mustKind(t, err, kms.KindInvalid)
		_, err = svc.CollectOrphans(ctx, r, found)
		mustKind(t, err, kms.KindInvalid)
	}

	// Between listing and collecting, unused gets its consumer: it is spared.
	if _, err := svc.AddConsumer(ctx, creator, unused.ID, image1); err != nil {
		t.Fatal(err)
	}
	deleted, err := svc.CollectOrphans(ctx, older, found)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted(deleted...), sorted(elsewhere.ID); !slices.Equal(got, want) {
		t.Fatalf("collected %v; want %v", got, want)
	}
	for _, id := range []string{unused.ID, used.ID, kept.ID} {
		if _, err := svc.GetSecret(ctx, admin, id, kms.View{}); err != nil {
			t.Fatalf("%s collected: %v", id, err)
		}
	}
	if a := audit.actions(elsewhere.ID); !slices.Contains(a, "orphan_delete:ok") {
		t.Fatalf("collection not audited: %v", a)
	}
	if found, _ := svc.FindOrphans(ctx, older); len(found) != 0 {
		t.Fatalf("orphans left: %v", orphanIDs(found))
	}
}

// Orphans is how the adapters reach orphans: service-admin only, and the
// collection is audited under the operator's name.
func TestOrphansNeedServiceAdmin(t *testing.T) {
	clk := &clock{t: time.Now()}
	svc, audit := newAudited(t, clk.now)
	unused := storeKey(t, svc, creator, kms.CreateRequest{DeletionPolicy: kms.OnLastConsumer})
	clk.advance(2 * time.Hour)
	rule := consumers.OrphanRule{Grace: time.Hour}
	for _, who := range []kms.Identity{admin, other, service} {
		_, _, err := svc.Orphans(ctx, who, rule, true)
		mustKind(t, err, kms.KindForbidden)
	}
	if _, err := svc.GetSecret(ctx, admin, unused.ID, kms.View{}); err != nil {
		t.Fatalf("a refused collection destroyed the secret: %v", err)
	}
	op := kms.Identity{Project: "ops", User: "oscar", Roles: []string{kms.RoleServiceAdmin}}
	found, destroyed, err := svc.Orphans(ctx, op, rule, false)
	if err != nil || len(destroyed) != 0 || !slices.Equal(orphanIDs(found), []string{unused.ID}) {
		t.Fatalf("list: %v %v %v", orphanIDs(found), destroyed, err)
	}
	found, destroyed, err = svc.Orphans(ctx, op, rule, true)
	if err != nil || !slices.Equal(destroyed, []string{unused.ID}) || len(found) != 1 {
		t.Fatalf("collect: %v %v %v", orphanIDs(found), destroyed, err)
	}
	_, err = svc.GetSecret(ctx, admin, unused.ID, kms.View{})
	mustKind(t, err, kms.KindNotFound)
	if got := audit.users(unused.ID); !slices.Contains(got, "oscar") {
		t.Fatalf("collection audited as %v", got)
	}
}
