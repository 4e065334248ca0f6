package kms_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

// Flow 1, Nova ephemeral encryption: each disk of an instance gets its own
// passphrase with the disk as consumer; deleting the disks under
// on_last_consumer destroys every key.
func TestNovaEphemeralDisks(t *testing.T) {
	svc, audit := newAudited(t, nil)
	var ids []string
	var passphrases [][]byte
	for _, dev := range []string{"disk", "disk.eph0", "disk.swap"} {
		disk := kms.Consumer{Service: "compute", ResourceType: "instance-disk", ResourceID: "inst-1/" + dev}
		sec, err := svc.CreateDiskSecret(ctx, creator, kms.DiskSecretRequest{
			Disk: disk, Encryption: kms.DiskEncryption{Format: "luks"}, DeletionPolicy: kms.OnLastConsumer,
		})
		if err != nil {
			t.Fatal(err)
		}
		if sec.Type != kms.Passphrase || len(sec.Consumers) != 1 || !sec.Consumers[0].Same(disk) {
			t.Fatalf("disk secret %+v", sec)
		}
		if e := sec.Encryption; e == nil || e.Format != kms.FormatLUKS1 || e.Cipher != kms.DefaultCipher || e.KeySize != 512 {
			t.Fatalf("encryption %+v", sec.Encryption)
		}
		_, pt, err := svc.GetPayload(ctx, creator, sec.ID)
		if err != nil || len(pt) != crypto.DefaultPassphrasePolicy.Length {
			t.Fatalf("passphrase %d bytes, %v", len(pt), err)
		}
		ids, passphrases = append(ids, sec.ID), append(passphrases, pt)
		if got := audit.actions(sec.ID); got[0] != "create:ok" {
			t.Fatalf("audit %v", got)
		}
	}
	if ids[0] == ids[1] || ids[1] == ids[2] || bytes.Equal(passphrases[0], passphrases[1]) ||
		bytes.Equal(passphrases[1], passphrases[2]) || bytes.Equal(passphrases[0], passphrases[2]) {
		t.Fatal("disks share a secret")
	}
	for i, dev := range []string{"disk", "disk.eph0", "disk.swap"} {
		disk := kms.Consumer{Service: "compute", ResourceType: "instance-disk", ResourceID: "inst-1/" + dev}
		if _, destroyed, err := svc.RemoveConsumer(ctx, creator, ids[i], disk); err != nil || !destroyed {
			t.Fatalf("deleting %s: destroyed=%v %v", dev, destroyed, err)
		}
		_, err := svc.GetSecret(ctx, admin, ids[i], kms.View{})
		mustKind(t, err, kms.KindNotFound)
	}
}

// Flow 3, CloudStack: a volume's passphrase exists before first use; it
// cannot be deleted while the volume uses it, and nothing is lost trying.
func TestCloudStackVolume(t *testing.T) {
	svc := newService(t)
	vol := kms.Consumer{Service: "cloudstack", ResourceType: "volume", ResourceID: "vol-42"}
	sec, err := svc.CreateDiskSecret(ctx, creator, kms.DiskSecretRequest{Disk: vol})
	if err != nil {
		t.Fatal(err)
	}
	_, before, _ := svc.GetPayload(ctx, creator, sec.ID)
	mustKind(t, svc.DeleteSecret(ctx, creator, sec.ID, false), kms.KindConflict)
	mustKind(t, svc.DeleteSecret(ctx, admin, sec.ID, false), kms.KindConflict)
	_, after, err := svc.GetPayload(ctx, creator, sec.ID)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("refused delete changed the passphrase: %v", err)
	}
	if _, destroyed, err := svc.RemoveConsumer(ctx, creator, sec.ID, vol); err != nil || destroyed {
		t.Fatalf("remove: destroyed=%v (policy retain) %v", destroyed, err)
	}
	if err := svc.DeleteSecret(ctx, creator, sec.ID, false); err != nil {
		t.Fatal(err)
	}
}

func TestDiskSecretOptions(t *testing.T) {
	svc := newService(t)
	disk := func(i int) kms.Consumer {
		return kms.Consumer{Service: "volume", ResourceType: "volume", ResourceID: fmt.Sprint("v", i)}
	}
	// Cinder: a 512-bit key for AES-256-XTS.
	sec, err := svc.CreateDiskSecret(ctx, creator, kms.DiskSecretRequest{Disk: disk(1), Type: kms.Symmetric,
		Encryption: kms.DiskEncryption{Format: "luks", Cipher: "aes-xts-plain64", KeySize: 512}})
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := svc.GetPayload(ctx, creator, sec.ID)
	if len(key) != 64 || sec.BitLength != 512 || sec.Algorithm != "aes" || sec.Mode != "xts" {
		t.Fatalf("cinder key: %d bytes, %+v", len(key), sec)
	}
	// Default symmetric: 256 bits; plain dm-crypt defaults to a key.
	sec, err = svc.CreateDiskSecret(ctx, creator, kms.DiskSecretRequest{Disk: disk(2), Encryption: kms.DiskEncryption{Format: "plain"}})
	if err != nil || sec.Type != kms.Symmetric || sec.BitLength != 256 || sec.Encryption.Format != kms.FormatPlain {
		t.Fatalf("plain: %+v %v", sec, err)
	}
	sec, err = svc.CreateDiskSecret(ctx, creator, kms.DiskSecretRequest{Disk: disk(3), Encryption: kms.DiskEncryption{Format: "LUKSv2"}})
	if err != nil || sec.Encryption.Format != kms.FormatLUKS2 {
		t.Fatalf("luks2: %+v %v", sec, err)
	}
	for name, req := range map[string]kms.DiskSecretRequest{
		"xts 128":        {Disk: disk(4), Type: kms.Symmetric, BitLength: 128},
		"size mismatch":  {Disk: disk(4), Type: kms.Symmetric, BitLength: 256, Encryption: kms.DiskEncryption{KeySize: 512}},
		"format":         {Disk: disk(4), Encryption: kms.DiskEncryption{Format: "bitlocker"}},
		"cipher":         {Disk: disk(4), Encryption: kms.DiskEncryption{Cipher: "aes xts; rm -rf"}},
		"type":           {Disk: disk(4), Type: kms.Opaque},
		"no disk":        {},
		"passphrase+bit": {Disk: disk(4), BitLength: 256},
		"policy":         {Disk: disk(4), DeletionPolicy: "sometimes"},
	} {
		_, err := svc.CreateDiskSecret(ctx, creator, req)
		if kms.KindOf(err) != kms.KindInvalid {
			t.Errorf("%s: %v; want invalid", name, err)
		}
	}
	// Another project: never, whatever the role; a service acts for p1 with
	// a token of p1.
	for _, who := range []kms.Identity{creator, service} {
		_, err = svc.CreateDiskSecret(ctx, who, kms.DiskSecretRequest{Disk: disk(5), Project: "p2"})
		mustKind(t, err, kms.KindForbidden)
	}
	_, err = svc.CreateDiskSecret(ctx, observer, kms.DiskSecretRequest{Disk: disk(5)})
	mustKind(t, err, kms.KindForbidden)
	service := kms.Identity{Project: "p1", User: "cinder", Roles: []string{kms.RoleCreator}}
	sec, err = svc.CreateDiskSecret(ctx, service, kms.DiskSecretRequest{Disk: disk(5), Project: "p1"})
	if err != nil || sec.Project != "p1" || sec.Creator != "cinder" {
		t.Fatalf("service create: %+v %v", sec, err)
	}
	if _, _, err := svc.GetPayload(ctx, service, sec.ID); err != nil {
		t.Fatalf("the creating service cannot fetch its key: %v", err)
	}
	if _, _, err := svc.GetPayload(ctx, observer, sec.ID); err != nil {
		t.Fatalf("the owning project cannot read: %v", err)
	}
}

// The secret and its consumer are one record written once: after a reopen
// (a restart) both are there, and a failed create leaves neither.
func TestDiskSecretDurableTogether(t *testing.T) {
	dir := t.TempDir()
	root, _, err := crypto.LoadOrCreateRootKey(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	open := func() (*kms.Service, func()) {
		st, err := bolt.Open(filepath.Join(dir, "kw.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The store is reopened at the same path: the durability is the point.
		return newServiceWith(t, kms.Config{Store: st, Master: root}), func() { st.Close() }
	}
	svc, closeStore := open()
	sec, err := svc.CreateDiskSecret(ctx, creator, kms.DiskSecretRequest{Disk: volume1})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := contextWithCancel()
	cancel()
	if _, err := svc.CreateDiskSecret(cancelled, creator, kms.DiskSecretRequest{Disk: image1}); err == nil {
		t.Fatal("create with a cancelled context succeeded")
	}
	closeStore()
	svc, closeStore = open()
	defer closeStore()
	got, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{})
	if err != nil || len(got.Consumers) != 1 || !got.Consumers[0].Same(volume1) || !got.HasPayload {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	list, total, _ := svc.ListSecrets(ctx, creator, kms.ListQuery{})
	if total != 1 || list[0].ID != sec.ID {
		t.Fatalf("the failed create left a secret: %d listed", total)
	}
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
