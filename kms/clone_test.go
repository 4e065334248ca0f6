package kms_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/kms"
)

// Flow 2, Cinder volume from an encrypted image: the image's key (consumer:
// the image, on_image_deletion) is cloned for the volume; deleting the image
// destroys the image key and leaves the volume key working.
func TestCinderVolumeFromImage(t *testing.T) {
	svc, audit := newAudited(t, nil)
	key := bytes.Repeat([]byte{0x04, 0xa7}, 32) // 512-bit aes-xts key
	img, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{
		Name: "image key", Type: kms.Symmetric, Algorithm: "aes", BitLength: 512, Mode: "xts",
		Payload: bytes.Clone(key), ContentType: "application/octet-stream",
		Metadata: map[string]string{"os_encrypt_key_deletion_policy": "on_image_deletion",
			"os_encrypt_format": "luks", "os_decrypt_size": "1073741824"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddConsumer(ctx, creator, img.ID, image1); err != nil {
		t.Fatal(err)
	}
	vol, err := svc.CloneSecret(ctx, creator, img.ID, kms.CloneRequest{
		Consumer: &volume1,
		Metadata: map[string]string{"os_encrypt_key_id": img.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	if vol.ID == img.ID || vol.ClonedFrom != img.ID || vol.Project != "p1" || vol.Type != kms.Symmetric ||
		vol.BitLength != 512 || vol.Mode != "xts" || vol.DeletionPolicy != kms.Retain {
		t.Fatalf("clone %+v", vol)
	}
	if len(vol.Consumers) != 1 || !vol.Consumers[0].Same(volume1) {
		t.Fatalf("clone consumers %+v", vol.Consumers)
	}
	if vol.Metadata["os_decrypt_size"] != "1073741824" || vol.Metadata["os_encrypt_format"] != "luks" {
		t.Fatalf("format metadata not carried over: %v", vol.Metadata)
	}
	if _, ok := vol.Metadata["os_encrypt_key_deletion_policy"]; ok {
		t.Fatalf("the image's policy leaked onto the volume key: %v", vol.Metadata)
	}
	if vol.Encryption == nil || vol.Encryption.Format != kms.FormatLUKS1 {
		t.Fatalf("clone encryption %+v", vol.Encryption)
	}
	_, got, err := svc.GetPayload(ctx, creator, vol.ID)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("clone material differs: %v", err)
	}
	// Image deleted: Glance removes its consumer, the image key goes.
	if _, destroyed, err := svc.RemoveConsumer(ctx, creator, img.ID, image1); err != nil || !destroyed {
		t.Fatalf("image deletion: destroyed=%v %v", destroyed, err)
	}
	_, _, err = svc.GetPayload(ctx, creator, img.ID)
	mustKind(t, err, kms.KindNotFound)
	_, got, err = svc.GetPayload(ctx, creator, vol.ID)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("volume key lost with the image: %v", err)
	}
	// One durable record, on the copy, names the source and both projects.
	if a := audit.actions(vol.ID); a[0] != "clone:ok" {
		t.Fatalf("clone not audited on the copy: %v", a)
	}
	var rec kms.AuditRecord
	for _, r := range audit.all() {
		if r.Action == "clone" && r.SecretID == vol.ID {
			rec = r
		}
	}
	if !strings.Contains(rec.Detail, "clone of secret "+img.ID) || !strings.Contains(rec.Detail, "into project p1") ||
		!strings.Contains(rec.Detail, "consumers: 0 → 1") {
		t.Fatalf("clone record %+v", rec)
	}
}

// Cinder acting for the volume's project, with a token of that project: it
// may read the image key (ACL) and the copy lands in its own project. A
// service of another project cannot clone into p2 (issue 8 #2).
func TestCloneLandsInCallersProject(t *testing.T) {
	svc := newService(t)
	cinderP2 := kms.Identity{Project: "p2", User: "cinder", Roles: []string{kms.RoleCreator}}
	img := storeKey(t, svc, creator, kms.CreateRequest{Name: "img"})
	_, err := svc.CloneSecret(ctx, cinderP2, img.ID, kms.CloneRequest{})
	mustKind(t, err, kms.KindForbidden) // may not read it yet
	users := []string{"cinder"}
	if _, err := svc.SetACL(ctx, creator, img.ID, kms.ACLChange{Users: &users}); err != nil {
		t.Fatal(err)
	}
	// The old "service" role of another project reaches nowhere, even as an
	// ACL reader of the source.
	_, err = svc.CloneSecret(ctx, service, img.ID, kms.CloneRequest{Project: "p2"})
	mustKind(t, err, kms.KindForbidden)
	if n, _, _ := svc.ListSecrets(ctx, other, kms.ListQuery{}); len(n) != 0 {
		t.Fatalf("a refused clone left %d secrets in p2", len(n))
	}
	name := "volume key"
	vol, err := svc.CloneSecret(ctx, cinderP2, img.ID, kms.CloneRequest{
		Project: "p2", Name: &name, Consumer: &volume1, DeletionPolicy: "on_image_deletion"})
	if err != nil {
		t.Fatal(err)
	}
	if vol.Project != "p2" || vol.Creator != "cinder" || vol.Name != name || vol.DeletionPolicy != kms.OnLastConsumer {
		t.Fatalf("clone %+v", vol)
	}
	if vol.Type != kms.Passphrase {
		t.Fatalf("a passphrase clone became %s", vol.Type)
	}
	_, src, _ := svc.GetPayload(ctx, creator, img.ID)
	for _, who := range []kms.Identity{other, cinderP2} { // p2's admin; the clone's owner
		_, pt, err := svc.GetPayload(ctx, who, vol.ID)
		if err != nil || !bytes.Equal(pt, src) {
			t.Fatalf("%s reads the clone: %v", who.User, err)
		}
	}
	_, _, err = svc.GetPayload(ctx, creator, vol.ID)
	mustKind(t, err, kms.KindForbidden) // p1 does not own the copy
}

func TestCloneRules(t *testing.T) {
	svc := newService(t)
	src := storeKey(t, svc, creator, kms.CreateRequest{})
	_, err := svc.CloneSecret(ctx, auditor, src.ID, kms.CloneRequest{})
	mustKind(t, err, kms.KindForbidden) // may read metadata, not the payload
	_, err = svc.CloneSecret(ctx, other, src.ID, kms.CloneRequest{})
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.CloneSecret(ctx, creator, src.ID, kms.CloneRequest{Project: "p2"})
	mustKind(t, err, kms.KindForbidden) // a creator creates only in its own project
	_, err = svc.CloneSecret(ctx, creator, src.ID, kms.CloneRequest{Metadata: map[string]string{"os_encrypt_key_id": "another"}})
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.CloneSecret(ctx, creator, src.ID, kms.CloneRequest{DeletionPolicy: kms.Retain,
		Metadata: map[string]string{"os_encrypt_key_deletion_policy": "on_image_deletion"}})
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.CloneSecret(ctx, creator, src.ID, kms.CloneRequest{Consumer: &kms.Consumer{Service: "x"}})
	mustKind(t, err, kms.KindInvalid)
	empty, _ := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "metadata only"})
	_, err = svc.CloneSecret(ctx, creator, empty.ID, kms.CloneRequest{})
	mustKind(t, err, kms.KindConflict)
	_, err = svc.CloneSecret(ctx, creator, "00000000-0000-0000-0000-000000000000", kms.CloneRequest{})
	mustKind(t, err, kms.KindNotFound)
	// Observers may read the payload (Barbican's legacy policy), not create.
	_, err = svc.CloneSecret(ctx, observer, src.ID, kms.CloneRequest{})
	mustKind(t, err, kms.KindForbidden)
	// The clone's own lifecycle: deleting the source leaves it alone.
	cl, err := svc.CloneSecret(ctx, creator, src.ID, kms.CloneRequest{Metadata: map[string]string{"os_encrypt_key_deletion_policy": "on_image_deletion"}})
	if err != nil || cl.DeletionPolicy != kms.OnLastConsumer || cl.Metadata["os_encrypt_key_deletion_policy"] != "" {
		t.Fatalf("policy from clone metadata: %+v %v", cl, err)
	}
	if err := svc.DeleteSecret(ctx, creator, src.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.GetPayload(ctx, creator, cl.ID); err != nil {
		t.Fatal(err)
	}
}
