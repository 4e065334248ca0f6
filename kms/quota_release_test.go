package kms_test

import (
	"context"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// A create refused by quota writes nothing: not the secret, not the order,
// and not the project key its sealing would have made.
func TestQuotaRefusedCreateLeavesNoKEK(t *testing.T) {
	st := newMemStore()
	svc := newServiceWith(t, kms.Config{Store: st, Quotas: kms.Quotas{kms.QuotaSecrets: 0}})
	fresh := kms.Identity{Project: "fresh", User: "u", Roles: []string{kms.RoleCreator}}
	_, err := svc.CreateSecret(ctx, fresh, kms.CreateRequest{Payload: []byte("x"), ContentType: "text/plain"})
	mustQuotaReached(t, err, "fresh", 0, kms.QuotaSecrets)
	_, err = svc.CreateOrder(ctx, fresh, kms.OrderRequest{Type: kms.OrderKey, BitLength: 256})
	mustQuotaReached(t, err, "fresh", 0, kms.QuotaSecrets)
	_, err = svc.CreateDiskSecret(ctx, fresh, kms.DiskSecretRequest{Disk: volume1})
	mustQuotaReached(t, err, "fresh", 0, kms.QuotaSecrets)
	if kvs, _ := st.List(context.Background(), "", "", 0); len(kvs) != 0 {
		keys := []string{}
		for _, kv := range kvs {
			keys = append(keys, kv.Key)
		}
		t.Fatalf("refused creates left %v", keys)
	}
}

// An orphan sweep gives the destroyed secrets' quota back.
func TestOrphanSweepReleasesQuota(t *testing.T) {
	clk := &clock{t: time.Now()}
	svc := newServiceWith(t, kms.Config{Store: newMemStore(), Now: clk.now})
	if err := svc.SetProjectQuotas(ctx, serviceAdmin, "p1", kms.Quotas{kms.QuotaSecrets: 1}); err != nil {
		t.Fatal(err)
	}
	storeKey(t, svc, creator, kms.CreateRequest{DeletionPolicy: kms.OnLastConsumer})
	_, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{})
	mustQuotaReached(t, err, "p1", 1, kms.QuotaSecrets)
	clk.advance(2 * time.Hour)
	_, destroyed, err := svc.Orphans(ctx, serviceAdmin, matrixOrphan, true)
	if err != nil || len(destroyed) != 1 {
		t.Fatalf("sweep: %v %v", destroyed, err)
	}
	if _, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{}); err != nil {
		t.Fatalf("the swept secret's quota was not released: %v", err)
	}
}

// Container writes give quota back through the same post-commit hooks as
// secrets: a removed consumer frees a consumer, a deleted container frees
// itself and its consumers.
func TestContainerWritesReleaseQuota(t *testing.T) {
	svc := quotaService(t, kms.Quotas{kms.QuotaContainers: 1, kms.QuotaConsumers: 1})
	generic := kms.ContainerRequest{Type: kms.ContainerGeneric}
	a, b := kms.ContainerConsumer{Name: "a", URL: "u"}, kms.ContainerConsumer{Name: "b", URL: "u"}
	c, err := svc.CreateContainer(ctx, creator, generic)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.CreateContainer(ctx, creator, generic)
	mustQuotaReached(t, err, "p1", 1, kms.QuotaContainers)
	if _, err := svc.AddContainerConsumer(ctx, creator, c.ID, a); err != nil {
		t.Fatal(err)
	}
	_, err = svc.AddContainerConsumer(ctx, creator, c.ID, b)
	mustQuotaReached(t, err, "p1", 1, kms.QuotaConsumers)
	if _, err := svc.RemoveContainerConsumer(ctx, creator, c.ID, a); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddContainerConsumer(ctx, creator, c.ID, b); err != nil {
		t.Fatalf("the removed consumer's quota was not released: %v", err)
	}
	if err := svc.DeleteContainer(ctx, creator, c.ID); err != nil {
		t.Fatal(err)
	}
	c, err = svc.CreateContainer(ctx, creator, generic)
	if err != nil {
		t.Fatalf("the deleted container's quota was not released: %v", err)
	}
	if _, err := svc.AddContainerConsumer(ctx, creator, c.ID, a); err != nil {
		t.Fatalf("the deleted container's consumers were not released: %v", err)
	}
}
