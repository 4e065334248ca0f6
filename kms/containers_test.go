package kms_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// newSecretIn makes a metadata-only secret as who and returns its id.
func newSecretIn(t *testing.T, svc *kms.Service, who kms.Identity, name string) string {
	t.Helper()
	sec, err := svc.CreateSecret(ctx, who, kms.CreateRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return sec.ID
}

func refs(pairs ...string) []kms.ContainerSecret {
	var out []kms.ContainerSecret
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, kms.ContainerSecret{Name: pairs[i], SecretID: pairs[i+1]})
	}
	return out
}

func secretNames(c *kms.Container) string {
	var n []string
	for _, s := range c.Secrets {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",")
}

func TestContainerLifecycleAndPolicy(t *testing.T) {
	svc := newService(t)
	a, b := newSecretIn(t, svc, creator, "a"), newSecretIn(t, svc, creator, "b")
	c, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{
		Name: "pair", Type: kms.ContainerGeneric, Secrets: refs("a", a, "b", b),
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Project != "p1" || c.Creator != "bob" || c.Type != kms.ContainerGeneric || secretNames(c) != "a,b" ||
		c.Created.IsZero() || !c.Created.Equal(c.Updated) {
		t.Fatalf("container %+v", c)
	}

	// Create: admin or creator (containers:post).
	for _, who := range []kms.Identity{observer, auditor} {
		_, err := svc.CreateContainer(ctx, who, kms.ContainerRequest{Type: kms.ContainerGeneric})
		mustKind(t, err, kms.KindForbidden)
	}
	// Read: any role in the project, audit included (container:get).
	for _, who := range []kms.Identity{admin, creator, creator2, observer, auditor} {
		got, err := svc.GetContainer(ctx, who, c.ID)
		if err != nil || got.Name != "pair" || secretNames(got) != "a,b" {
			t.Fatalf("%s reads: %+v %v", who.User, got, err)
		}
	}
	_, err = svc.GetContainer(ctx, other, c.ID)
	mustKind(t, err, kms.KindForbidden) // another project's admin: 403, as Barbican
	_, err = svc.GetContainer(ctx, creator, "0190a0a0-0000-7000-8000-000000000000")
	mustKind(t, err, kms.KindNotFound)
	_, err = svc.GetContainer(ctx, creator, "not-a-uuid")
	mustKind(t, err, kms.KindNotFound)

	// List: admin, observer, creator; not audit (containers:get).
	if _, _, err := svc.ListContainers(ctx, auditor, kms.ContainerQuery{}); kms.KindOf(err) != kms.KindForbidden {
		t.Fatalf("audit lists: %v", err)
	}
	list, total, err := svc.ListContainers(ctx, observer, kms.ContainerQuery{})
	if err != nil || total != 1 || list[0].ID != c.ID {
		t.Fatalf("list %v %d %v", list, total, err)
	}
	if list, total, _ := svc.ListContainers(ctx, other, kms.ContainerQuery{}); total != 0 || len(list) != 0 {
		t.Fatalf("another project lists %v", list)
	}

	// Delete: project admin or the creator-owner (container:delete).
	for _, who := range []kms.Identity{observer, auditor, creator2, other} {
		mustKind(t, svc.DeleteContainer(ctx, who, c.ID), kms.KindForbidden)
	}
	if err := svc.DeleteContainer(ctx, creator, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = svc.GetContainer(ctx, creator, c.ID)
	mustKind(t, err, kms.KindNotFound)
	mustKind(t, svc.DeleteContainer(ctx, creator, c.ID), kms.KindNotFound)
	// The secrets stay: a container only refers to them.
	if _, err := svc.GetSecret(ctx, creator, a, kms.View{}); err != nil {
		t.Fatal(err)
	}

	c2, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: kms.ContainerGeneric})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteContainer(ctx, admin, c2.ID); err != nil {
		t.Fatalf("admin deletes another user's container: %v", err)
	}
}

func TestContainerValidation(t *testing.T) {
	svc := newService(t)
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = newSecretIn(t, svc, creator, fmt.Sprint("s", i))
	}
	cases := []struct {
		name string
		req  kms.ContainerRequest
		ok   bool
		msg  string
	}{
		{"no type", kms.ContainerRequest{}, false, "is not one of"},
		{"unknown type", kms.ContainerRequest{Type: "dsa"}, false, "'dsa' is not one of ['generic', 'rsa', 'certificate']"},
		{"long name", kms.ContainerRequest{Type: "generic", Name: strings.Repeat("n", 256)}, false, "name"},
		{"generic, any names", kms.ContainerRequest{Type: "generic", Secrets: refs("x", ids[0], "", ids[1])}, true, ""},
		{"duplicate names", kms.ContainerRequest{Type: "generic", Secrets: refs("x", ids[0], "x", ids[1])}, false, "Duplicate reference names are not allowed"},
		{"two unnamed", kms.ContainerRequest{Type: "generic", Secrets: refs("", ids[0], "", ids[1])}, false, "Duplicate reference names"},
		{"duplicate secrets", kms.ContainerRequest{Type: "generic", Secrets: refs("x", ids[0], "y", ids[0])}, false, "Duplicate secret ids are not allowed"},
		{"rsa", kms.ContainerRequest{Type: "rsa", Secrets: refs("public_key", ids[0], "private_key", ids[1], "private_key_passphrase", ids[2])}, true, ""},
		{"rsa without passphrase", kms.ContainerRequest{Type: "rsa", Secrets: refs("public_key", ids[0], "private_key", ids[1])}, true, ""},
		{"rsa without public key", kms.ContainerRequest{Type: "rsa", Secrets: refs("private_key", ids[1])}, false, "minimum required reference names are 'public_key', 'private_key'"},
		{"rsa foreign name", kms.ContainerRequest{Type: "rsa", Secrets: refs("public_key", ids[0], "private_key", ids[1], "certificate", ids[2])}, false, "only 'private_key', 'public_key', 'private_key_passphrase' reference names"},
		{"rsa empty", kms.ContainerRequest{Type: "rsa"}, true, ""}, // Barbican checks names only when there are refs
		{"certificate", kms.ContainerRequest{Type: "certificate", Secrets: refs("certificate", ids[0], "private_key", ids[1], "private_key_passphrase", ids[2], "intermediates", ids[3])}, true, ""},
		{"certificate alone", kms.ContainerRequest{Type: "certificate", Secrets: refs("certificate", ids[0])}, true, ""},
		{"certificate missing", kms.ContainerRequest{Type: "certificate", Secrets: refs("private_key", ids[1])}, false, "'certificate'"},
		{"certificate public key", kms.ContainerRequest{Type: "certificate", Secrets: refs("certificate", ids[0], "public_key", ids[1])}, false, "only 'certificate'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.CreateContainer(ctx, creator, tc.req)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			mustKind(t, err, kms.KindInvalid)
			// kms names the object and field; the wording is the adapter's.
			var ke *kms.Error
			if !errors.As(err, &ke) || !strings.Contains(ke.Msg, tc.msg) || ke.Object != "Container" || ke.Field == "" {
				t.Fatalf("error %#v, want a Container field refusal saying %q", err, tc.msg)
			}
		})
	}

	many := make([]kms.ContainerSecret, kms.MaxContainerSecrets+1)
	for i := range many {
		many[i] = kms.ContainerSecret{Name: fmt.Sprint(i), SecretID: fmt.Sprintf("0190a0a0-0000-7000-8000-%012d", i)}
	}
	_, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic", Secrets: many})
	mustKind(t, err, kms.KindInvalid)
}

// clockService is a Service whose clock the test moves.
func clockService(t *testing.T) (*kms.Service, *atomic.Int64) {
	t.Helper()
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	return newServiceWith(t, kms.Config{Now: now}), &offset
}

// refTargets are secrets that a ref made by creator may not name, or not
// for long: another project's, a deleted one, one expiring in an hour and
// creator2's private one.
type refTargets struct{ foreign, gone, expiring, private string }

func newRefTargets(t *testing.T, svc *kms.Service) refTargets {
	t.Helper()
	r := refTargets{foreign: newSecretIn(t, svc, other, "foreign"), gone: newSecretIn(t, svc, creator, "gone"),
		private: newSecretIn(t, svc, creator2, "private")}
	exp := time.Now().Add(time.Hour)
	expiring, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "expiring", Expiration: &exp})
	if err != nil {
		t.Fatal(err)
	}
	r.expiring = expiring.ID
	no := false
	if _, err := svc.SetACL(ctx, creator2, r.private, kms.ACLChange{ProjectAccess: &no, Replace: true}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteSecret(ctx, creator, r.gone, false); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestContainerSecretRefs(t *testing.T) {
	svc, offset := clockService(t)
	mine := newSecretIn(t, svc, creator, "mine")
	tg := newRefTargets(t, svc)
	foreign, gone, private := tg.foreign, tg.gone, tg.private

	create := func(id string) error {
		_, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic", Secrets: refs("k", id)})
		return err
	}
	if err := create(mine); err != nil {
		t.Fatal(err)
	}
	// Not a live secret of the caller's project: 404, as Barbican
	// ("Secret provided for 'k' doesn't exist.").
	for _, id := range []string{foreign, gone, "0190a0a0-0000-7000-8000-000000000000", "not-a-uuid", ""} {
		err := create(id)
		mustKind(t, err, kms.KindNotFound)
		if err.Error() != "Secret provided for 'k' doesn't exist." {
			t.Errorf("message %q", err)
		}
	}
	// A private secret the caller may not read: 403.
	mustKind(t, create(private), kms.KindForbidden)
	if _, err := svc.CreateContainer(ctx, creator2, kms.ContainerRequest{Type: "generic", Secrets: refs("k", private)}); err != nil {
		t.Fatalf("the owner of a private secret: %v", err)
	}
	if err := create(tg.expiring); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(2 * time.Hour))
	mustKind(t, create(tg.expiring), kms.KindNotFound)
}

// A deleted secret leaves its containers (Barbican deletes its
// container_secret rows); an expired one stays.
func TestContainerDropsDeletedSecrets(t *testing.T) {
	svc, offset := clockService(t)
	keep, drop := newSecretIn(t, svc, creator, "keep"), newSecretIn(t, svc, creator, "drop")
	exp := time.Now().Add(time.Hour)
	expiring, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Expiration: &exp})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{
		Type: "generic", Secrets: refs("keep", keep, "drop", drop, "exp", expiring.ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteSecret(ctx, creator, drop, false); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(2 * time.Hour))
	got, err := svc.GetContainer(ctx, creator, c.ID)
	if err != nil || secretNames(got) != "keep,exp" {
		t.Fatalf("after the delete: %q %v", secretNames(got), err)
	}
	list, _, err := svc.ListContainers(ctx, creator, kms.ContainerQuery{})
	if err != nil || secretNames(list[0]) != "keep,exp" {
		t.Fatalf("listed: %v %v", list, err)
	}
}

func TestContainerListFiltersAndPaging(t *testing.T) {
	svc := newService(t)
	for i := range 12 {
		typ := kms.ContainerGeneric
		if i%3 == 0 {
			typ = kms.ContainerRSA
		}
		if _, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Name: fmt.Sprintf("Box-%02d", i), Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	page, total, err := svc.ListContainers(ctx, creator, kms.ContainerQuery{Offset: 10, Limit: 5})
	if err != nil || total != 12 || len(page) != 2 || page[0].Name != "Box-10" || page[1].Name != "Box-11" {
		t.Fatalf("page %v total %d %v", page, total, err)
	}
	page, total, _ = svc.ListContainers(ctx, creator, kms.ContainerQuery{Type: kms.ContainerRSA})
	if total != 4 || page[1].Name != "Box-03" {
		t.Fatalf("rsa: %d %v", total, page)
	}
	page, total, _ = svc.ListContainers(ctx, creator, kms.ContainerQuery{Name: "box-1"})
	if total != 2 || page[0].Name != "Box-10" {
		t.Fatalf("name: %d %v", total, page)
	}
	if _, total, _ = svc.ListContainers(ctx, creator, kms.ContainerQuery{Offset: 50}); total != 12 {
		t.Fatalf("past the end: total %d", total)
	}
}

var (
	svcUser  = kms.Identity{Project: "svc", User: "octavia", Roles: []string{"service"}}
	svcUser2 = kms.Identity{Project: "svc2", User: "other-lb", Roles: []string{"service", kms.RoleAdmin}}
)

func TestContainerConsumers(t *testing.T) {
	svc := newService(t)
	c, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic"})
	if err != nil {
		t.Fatal(err)
	}
	lb := kms.ContainerConsumer{Name: "octavia", URL: "https://lb.example/v2/lbaas/listeners/1"}
	got, err := svc.AddContainerConsumer(ctx, auditor, c.ID, lb)
	if err != nil || len(got.Consumers) != 1 || got.Consumers[0].Name != "octavia" || got.Consumers[0].Project != "p1" {
		t.Fatalf("add: %+v %v", got, err)
	}
	if !got.Updated.After(c.Updated) && !got.Updated.Equal(c.Updated) {
		t.Errorf("updated %v before %v", got.Updated, c.Updated)
	}
	// Idempotent: the same name and URL is one consumer.
	again, err := svc.AddContainerConsumer(ctx, creator, c.ID, lb)
	if err != nil || len(again.Consumers) != 1 {
		t.Fatalf("add again: %+v %v", again, err)
	}
	// Another project may not, whatever its roles, unless the ACL names it.
	_, err = svc.AddContainerConsumer(ctx, other, c.ID, kms.ContainerConsumer{Name: "x", URL: "y"})
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.AddContainerConsumer(ctx, svcUser, c.ID, kms.ContainerConsumer{Name: "svc", URL: "u"})
	mustKind(t, err, kms.KindForbidden)
	if _, err := svc.SetContainerACL(ctx, creator, c.ID, kms.ACLChange{Users: &[]string{svcUser.User, svcUser2.User}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddContainerConsumer(ctx, svcUser, c.ID, kms.ContainerConsumer{Name: "svc", URL: "u"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := svc.AddContainerConsumer(ctx, creator, c.ID, kms.ContainerConsumer{Name: "n", URL: fmt.Sprint("u", i)}); err != nil {
			t.Fatal(err)
		}
	}
	cs, total, err := svc.ListContainerConsumers(ctx, observer, c.ID, 1, 2)
	if err != nil || total != 5 || len(cs) != 2 || cs[0].Name != "svc" || cs[1].URL != "u0" {
		t.Fatalf("page %+v total %d %v", cs, total, err)
	}
	_, _, err = svc.ListContainerConsumers(ctx, other, c.ID, 0, 10)
	mustKind(t, err, kms.KindForbidden)

	// Removing: the registering project or the container's project; a
	// third project's reader (here by the ACL) may not.
	_, err = svc.RemoveContainerConsumer(ctx, other, c.ID, kms.ContainerConsumer{Name: "svc", URL: "u"})
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.RemoveContainerConsumer(ctx, svcUser2, c.ID, kms.ContainerConsumer{Name: "svc", URL: "u"})
	mustKind(t, err, kms.KindForbidden)
	if got, err = svc.RemoveContainerConsumer(ctx, svcUser, c.ID, kms.ContainerConsumer{Name: "svc", URL: "u"}); err != nil || len(got.Consumers) != 4 {
		t.Fatalf("the registering project removes: %+v %v", got, err)
	}
	if got, err = svc.RemoveContainerConsumer(ctx, observer, c.ID, lb); err != nil || len(got.Consumers) != 3 {
		t.Fatalf("container project removes: %+v %v", got, err)
	}
	// Idempotent: removing an absent consumer changes nothing.
	if got, err = svc.RemoveContainerConsumer(ctx, observer, c.ID, lb); err != nil || len(got.Consumers) != 3 {
		t.Fatalf("remove again: %+v %v", got, err)
	}

	for _, bad := range []kms.ContainerConsumer{
		{URL: "u"}, {Name: "n"}, {Name: strings.Repeat("n", 37), URL: "u"},
		{Name: "n", URL: strings.Repeat("u", 256)}, {Name: "n\x00", URL: "u"},
	} {
		_, err := svc.AddContainerConsumer(ctx, creator, c.ID, bad)
		mustKind(t, err, kms.KindInvalid)
	}
	_, err = svc.AddContainerConsumer(ctx, creator, "0190a0a0-0000-7000-8000-000000000000", lb)
	mustKind(t, err, kms.KindNotFound)

	// Barbican deletes a container in use; its consumers go with it.
	if err := svc.DeleteContainer(ctx, creator, c.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.ListContainerConsumers(ctx, creator, c.ID, 0, 10)
	mustKind(t, err, kms.KindNotFound)
}

func TestContainerConsumersConcurrent(t *testing.T) {
	svc := newService(t)
	c, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			consumer := kms.ContainerConsumer{Name: "lb", URL: fmt.Sprint("u", i%10)} // each twice
			if _, err := svc.AddContainerConsumer(ctx, creator, c.ID, consumer); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, total, _ := svc.ListContainerConsumers(ctx, creator, c.ID, 0, 0); total != 10 {
		t.Fatalf("%d consumers, want 10", total)
	}
}

func TestContainerQuotas(t *testing.T) {
	svc := quotaService(t, kms.Quotas{kms.QuotaContainers: 2, kms.QuotaConsumers: 2})
	var ids []string
	for range 2 {
		c, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	_, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic"})
	mustKind(t, err, kms.KindForbidden)
	if !strings.Contains(err.Error(), "Only 2 containers are allowed") {
		t.Errorf("message %q", err)
	}
	if _, err := svc.CreateContainer(ctx, other, kms.ContainerRequest{Type: "generic"}); err != nil {
		t.Fatalf("another project: %v", err)
	}
	// Secrets are a separate kind.
	newSecretIn(t, svc, creator, "not-a-container")

	// Container consumers count with the secret consumers of the project.
	sec := newSecretIn(t, svc, creator, "used")
	if _, err := svc.AddConsumer(ctx, creator, sec, kms.Consumer{Service: "nova", ResourceType: "instance", ResourceID: "1"}); err != nil {
		t.Fatal(err)
	}
	lb := kms.ContainerConsumer{Name: "lb", URL: "u1"}
	if _, err := svc.AddContainerConsumer(ctx, creator, ids[0], lb); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddContainerConsumer(ctx, creator, ids[0], lb); err != nil {
		t.Fatalf("re-adding an existing consumer needs no quota: %v", err)
	}
	_, err = svc.AddContainerConsumer(ctx, creator, ids[1], kms.ContainerConsumer{Name: "lb", URL: "u2"})
	mustKind(t, err, kms.KindForbidden)

	// Deleting a container frees its slot and its consumers'.
	if err := svc.DeleteContainer(ctx, creator, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic"}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	if _, err := svc.AddContainerConsumer(ctx, creator, ids[1], kms.ContainerConsumer{Name: "lb", URL: "u2"}); err != nil {
		t.Fatalf("consumer after a delete: %v", err)
	}
}

// 20 concurrent creates against a container quota of 5 make exactly 5.
func TestContainerQuotaConcurrent(t *testing.T) {
	svc := quotaService(t, kms.Quotas{kms.QuotaContainers: 5})
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic"})
			if err == nil {
				ok.Add(1)
			} else if kms.KindOf(err) != kms.KindForbidden {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 {
		t.Fatalf("%d containers under a quota of 5", ok.Load())
	}
}

// Changes to things other than secrets are on the audit trail too, named
// in the record's detail.
func TestContainerAndQuotaChangesAudited(t *testing.T) {
	svc, audit := newAudited(t, nil)
	sec := newSecretIn(t, svc, creator, "k")
	c, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic", Secrets: []kms.ContainerSecret{{Name: "k", SecretID: sec}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteContainer(ctx, creator2, c.ID); err == nil {
		t.Fatal("a creator who is not the owner deleted the container")
	}
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 10, kms.QuotaOrders: 2}); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, audit,
		"container_create:ok:container "+c.ID,
		"container_delete:forbidden:container "+c.ID,
		"quota_set:ok:project p1: orders=2 secrets=10",
	)
}

// checkTrail compares the audit records about things other than secrets
// (action:outcome:detail) with want.
func checkTrail(t *testing.T, audit *memAudit, want ...string) {
	t.Helper()
	var got []string
	for _, r := range audit.all() {
		if r.SecretID == "" {
			got = append(got, r.Action+":"+r.Outcome+":"+r.Detail)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit trail:\n%q\nwant\n%q", got, want)
	}
}

// newGeneric makes a generic container of who's with the refs given as
// name, id pairs.
func newGeneric(t *testing.T, svc *kms.Service, who kms.Identity, pairs ...string) *kms.Container {
	t.Helper()
	c, err := svc.CreateContainer(ctx, who, kms.ContainerRequest{Type: kms.ContainerGeneric, Secrets: refs(pairs...)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Barbican's /v1/containers/{id}/secrets: one ref added to or removed
// from a generic container, checked as a create checks its refs.
func TestContainerSecretAddRemove(t *testing.T) {
	svc := newService(t)
	a, b := newSecretIn(t, svc, creator, "a"), newSecretIn(t, svc, creator, "b")
	c := newGeneric(t, svc, creator, "a", a)
	got, err := svc.AddContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{Name: "b", SecretID: b})
	if err != nil || secretNames(got) != "a,b" || got.Updated.Before(c.Updated) {
		t.Fatalf("add: %+v %v", got, err)
	}
	// An unnamed ref, by another creator of the project (not private).
	c3 := newSecretIn(t, svc, creator2, "c")
	if _, err := svc.AddContainerSecret(ctx, creator2, c.ID, kms.ContainerSecret{SecretID: c3}); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.GetContainer(ctx, observer, c.ID); secretNames(got) != "a,b," {
		t.Fatalf("after the adds: %q", secretNames(got))
	}

	// Remove: the name and the secret must both match.
	_, err = svc.RemoveContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{Name: "x", SecretID: b})
	mustKind(t, err, kms.KindNotFound)
	if err.Error() != "Secret provided is not in the container" {
		t.Errorf("message %q", err)
	}
	_, err = svc.RemoveContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{SecretID: a})
	mustKind(t, err, kms.KindNotFound)
	if got, err = svc.RemoveContainerSecret(ctx, admin, c.ID, kms.ContainerSecret{Name: "b", SecretID: b}); err != nil || secretNames(got) != "a," {
		t.Fatalf("remove: %+v %v", got, err)
	}
	if got, err = svc.RemoveContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{SecretID: c3}); err != nil || secretNames(got) != "a" {
		t.Fatalf("remove unnamed: %+v %v", got, err)
	}
	_, err = svc.RemoveContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{Name: "b", SecretID: b})
	mustKind(t, err, kms.KindNotFound) // already gone
	// A secret no longer there: Barbican's other 404.
	_, err = svc.RemoveContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{Name: "z", SecretID: "0190a0a0-0000-7000-8000-000000000000"})
	mustKind(t, err, kms.KindNotFound)
	if !strings.Contains(err.Error(), "doesn't exist") {
		t.Errorf("message %q", err)
	}
	// The secrets stay.
	if _, err := svc.GetSecret(ctx, creator, b, kms.View{}); err != nil {
		t.Fatal(err)
	}
}

func TestContainerSecretRefused(t *testing.T) {
	svc, offset := clockService(t)
	mine, other2 := newSecretIn(t, svc, creator, "mine"), newSecretIn(t, svc, creator, "other")
	c := newGeneric(t, svc, creator, "k", mine, "", newSecretIn(t, svc, creator, "unnamed"))
	tg := newRefTargets(t, svc)
	foreign, gone, private := tg.foreign, tg.gone, tg.private
	add := func(who kms.Identity, name, id string) error {
		_, err := svc.AddContainerSecret(ctx, who, c.ID, kms.ContainerSecret{Name: name, SecretID: id})
		return err
	}
	for _, tc := range []struct {
		name     string
		who      kms.Identity
		ref, sec string
		kind     kms.Kind
		msg      string
	}{
		{"observer", observer, "x", other2, kms.KindForbidden, ""},
		{"auditor", auditor, "x", other2, kms.KindForbidden, ""},
		{"another project", other, "x", foreign, kms.KindForbidden, ""},
		{"another project's secret", creator, "x", foreign, kms.KindNotFound, "Secret provided doesn't exist."},
		{"deleted secret", creator, "x", gone, kms.KindNotFound, "Secret provided doesn't exist."},
		{"unknown secret", creator, "x", "0190a0a0-0000-7000-8000-000000000000", kms.KindNotFound, "doesn't exist"},
		{"malformed id", creator, "x", "not-a-uuid", kms.KindNotFound, "doesn't exist"},
		{"unreadable secret", creator, "x", private, kms.KindForbidden, ""},
		{"same ref", creator, "k", mine, kms.KindConflict, "A secret with that name and ID is already stored"},
		{"same name", creator, "k", other2, kms.KindConflict, "A secret named 'k' is already stored"},
		{"same secret", creator, "k2", mine, kms.KindConflict, "already stored in this container as 'k'"},
		{"second unnamed", creator, "", other2, kms.KindConflict, "An unnamed secret is already stored"},
		{"long name", creator, strings.Repeat("n", 256), other2, kms.KindInvalid, "name is longer than 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := add(tc.who, tc.ref, tc.sec)
			mustKind(t, err, tc.kind)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("message %q, want %q", err, tc.msg)
			}
		})
	}
	_, err := svc.AddContainerSecret(ctx, creator, "0190a0a0-0000-7000-8000-000000000000", kms.ContainerSecret{SecretID: mine})
	mustKind(t, err, kms.KindNotFound)
	if got, _ := svc.GetContainer(ctx, creator, c.ID); secretNames(got) != "k," {
		t.Fatalf("refused adds changed the container: %q", secretNames(got))
	}

	// Typed containers cannot be changed (Barbican's API reference).
	rsa, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: kms.ContainerRSA,
		Secrets: refs("public_key", mine, "private_key", other2)})
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []func(context.Context, kms.Identity, string, kms.ContainerSecret) (*kms.Container, error){
		svc.AddContainerSecret, svc.RemoveContainerSecret,
	} {
		_, err := change(ctx, admin, rsa.ID, kms.ContainerSecret{Name: "private_key", SecretID: other2})
		mustKind(t, err, kms.KindInvalid)
		if err.Error() != "Only 'generic' containers can be modified." {
			t.Errorf("message %q", err)
		}
	}

	// A deleted secret's ref is gone: its name is free again.
	if err := add(creator, "e", tg.expiring); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteSecret(ctx, creator, mine, false); err != nil {
		t.Fatal(err)
	}
	if err := add(creator, "k", other2); err != nil {
		t.Fatalf("the name of a deleted secret's ref: %v", err)
	}
	// An expired secret cannot be added, but its ref can still be removed.
	offset.Store(int64(2 * time.Hour))
	mustKind(t, add(creator, "e2", tg.expiring), kms.KindNotFound)
	got, err := svc.RemoveContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{Name: "e", SecretID: tg.expiring})
	if err != nil || secretNames(got) != ",k" {
		t.Fatalf("remove an expired secret's ref: %+v %v", got, err)
	}
}

// The cap of a create holds for adds.
func TestContainerSecretCap(t *testing.T) {
	svc := newService(t)
	c := newGeneric(t, svc, creator)
	for i := range kms.MaxContainerSecrets {
		id := newSecretIn(t, svc, creator, "")
		if _, err := svc.AddContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{Name: fmt.Sprint(i), SecretID: id}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := svc.AddContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{Name: "one more", SecretID: newSecretIn(t, svc, creator, "")})
	mustKind(t, err, kms.KindInvalid)
}

// Concurrent adds all land (compare-and-swap), and an add racing the
// delete of its secret never leaves a ref to it behind.
func TestContainerSecretConcurrent(t *testing.T) {
	svc := newService(t)
	c := newGeneric(t, svc, creator)
	ids := make([]string, 16)
	for i := range ids {
		ids[i] = newSecretIn(t, svc, creator, "")
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			_, err := svc.AddContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{Name: fmt.Sprint(i), SecretID: id})
			if err != nil && (i%2 == 0 || kms.KindOf(err) != kms.KindNotFound) {
				t.Error(err)
			}
		})
		if i%2 == 1 {
			wg.Go(func() {
				if err := svc.DeleteSecret(ctx, creator, id, false); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	got, err := svc.GetContainer(ctx, creator, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ref := range got.Secrets {
		names = append(names, ref.Name)
	}
	slices.Sort(names)
	if want := []string{"0", "10", "12", "14", "2", "4", "6", "8"}; !slices.Equal(names, want) {
		t.Fatalf("refs %v, want %v", names, want)
	}
}

// Adding and removing refs are on the audit trail, naming the container
// and the secret.
func TestContainerSecretChangesAudited(t *testing.T) {
	svc, audit := newAudited(t, nil)
	sec := newSecretIn(t, svc, creator, "k")
	c := newGeneric(t, svc, creator)
	ref := kms.ContainerSecret{Name: "k", SecretID: sec}
	if _, err := svc.AddContainerSecret(ctx, creator, c.ID, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RemoveContainerSecret(ctx, observer, c.ID, ref); err == nil {
		t.Fatal("an observer removed a ref")
	}
	if _, err := svc.RemoveContainerSecret(ctx, creator, c.ID, ref); err != nil {
		t.Fatal(err)
	}
	// What names no secret stays off the trail.
	if _, err := svc.RemoveContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{SecretID: "x\n" + strings.Repeat("y", 1000)}); err == nil {
		t.Fatal("removed a ref to nothing")
	}
	detail := "container " + c.ID + " secret " + sec
	checkTrail(t, audit, "container_create:ok:container "+c.ID, "container_secret_add:ok:"+detail,
		"container_secret_remove:forbidden:"+detail, "container_secret_remove:ok:"+detail,
		"container_secret_remove:not_found:container "+c.ID+" secret (invalid)")
}
