package kms_test

import (
	"testing"

	"github.com/keywarden/keywarden/kms"
)

// castellan's flow: order a key, read the order's secret, delete the order.
func TestKeyOrder(t *testing.T) {
	svc := newService(t)
	o, err := svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderKey, Name: "vol key", Algorithm: "AES", BitLength: 256, Mode: "xts"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != kms.OrderStatusActive || o.SecretID == "" || o.Creator != "bob" || o.Extended() {
		t.Fatalf("order %+v", o)
	}
	got, err := svc.GetOrder(ctx, observer, o.ID)
	if err != nil || got.SecretID != o.SecretID {
		t.Fatalf("get: %+v %v", got, err)
	}
	sec, key, err := svc.GetPayload(ctx, creator, o.SecretID)
	if err != nil || len(key) != 32 || sec.Type != kms.Symmetric || sec.Algorithm != "aes" || sec.Name != "vol key" {
		t.Fatalf("ordered secret %+v (%d bytes) %v", sec, len(key), err)
	}
	_, err = svc.GetOrder(ctx, other, o.ID)
	mustKind(t, err, kms.KindForbidden)
	mustKind(t, svc.DeleteOrder(ctx, creator2, o.ID), kms.KindForbidden) // not its creator
	mustKind(t, svc.DeleteOrder(ctx, other, o.ID), kms.KindForbidden)
	if err := svc.DeleteOrder(ctx, creator, o.ID); err != nil {
		t.Fatal(err)
	}
	mustKind(t, svc.DeleteOrder(ctx, creator, o.ID), kms.KindNotFound)
	_, err = svc.GetOrder(ctx, creator, o.ID)
	mustKind(t, err, kms.KindNotFound)
	if _, err := svc.GetSecret(ctx, creator, o.SecretID, kms.View{}); err != nil {
		t.Fatalf("deleting the order took its secret: %v", err)
	}
}

// Our passphrase order, with the disk as consumer: one write for both.
func TestPassphraseOrderForDisk(t *testing.T) {
	svc := newService(t)
	vol := kms.Consumer{Service: "cloudstack", ResourceType: "volume", ResourceID: "vol-7"}
	o, err := svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderPassphrase, Consumer: &vol,
		Encryption: &kms.DiskEncryption{Format: "luks"}, DeletionPolicy: kms.OnLastConsumer})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Extended() {
		t.Fatal("a passphrase order is an extension")
	}
	sec, pp, err := svc.GetPayload(ctx, creator, o.SecretID)
	if err != nil || sec.Type != kms.Passphrase || len(pp) < 32 || len(sec.Consumers) != 1 ||
		sec.Encryption.Format != kms.FormatLUKS1 || sec.DeletionPolicy != kms.OnLastConsumer {
		t.Fatalf("ordered disk secret %+v %v", sec, err)
	}
	plain, err := svc.CreateOrder(ctx, admin, kms.OrderRequest{Type: kms.OrderPassphrase})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderKey, BitLength: 512, Consumer: &volume1}); err != nil {
		t.Fatal(err)
	}
	all, total, err := svc.ListOrders(ctx, observer, kms.OrderQuery{})
	if err != nil || total != 3 || all[0].ID != o.ID || all[1].ID != plain.ID {
		t.Fatalf("list: %d %v", total, err)
	}
	keys, total, _ := svc.ListOrders(ctx, observer, kms.OrderQuery{Types: []kms.OrderType{kms.OrderKey}})
	if total != 1 || keys[0].Type != kms.OrderKey || !keys[0].Extended() {
		t.Fatalf("typed list: %d", total)
	}
	page, total, _ := svc.ListOrders(ctx, observer, kms.OrderQuery{Offset: 1, Limit: 1})
	if total != 3 || len(page) != 1 || page[0].ID != plain.ID {
		t.Fatalf("page: %d %d", total, len(page))
	}
	if err := svc.DeleteOrder(ctx, admin, o.ID); err != nil {
		t.Fatalf("admin deletes another's order: %v", err)
	}
}

func TestOrderRules(t *testing.T) {
	svc := newService(t)
	for name, req := range map[string]kms.OrderRequest{
		"asymmetric, no algorithm": {Type: "asymmetric", BitLength: 2048},
		"unknown type":             {Type: "banana"},
		"no bits":                  {Type: kms.OrderKey},
		"bad bits":                 {Type: kms.OrderKey, BitLength: 100},
		"not aes":                  {Type: kms.OrderKey, Algorithm: "des", BitLength: 128},
		"bad consumer":             {Type: kms.OrderPassphrase, Consumer: &kms.Consumer{Service: "x"}},
	} {
		_, err := svc.CreateOrder(ctx, creator, req)
		if kms.KindOf(err) != kms.KindInvalid {
			t.Errorf("%s: %v; want invalid", name, err)
		}
	}
	_, err := svc.CreateOrder(ctx, observer, kms.OrderRequest{Type: kms.OrderKey, BitLength: 256})
	mustKind(t, err, kms.KindForbidden)
	_, _, err = svc.ListOrders(ctx, auditor, kms.OrderQuery{})
	mustKind(t, err, kms.KindForbidden)
	if list, total, _ := svc.ListSecrets(ctx, admin, kms.ListQuery{}); total != 0 {
		t.Fatalf("refused orders left %d secrets: %v", total, names(list))
	}
}
