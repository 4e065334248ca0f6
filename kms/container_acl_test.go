package kms_test

import (
	"slices"
	"testing"

	"github.com/keywarden/keywarden/kms"
)

// A private container is read by its creator, the project's admins and
// the users its ACL names, of any project (Barbican's container:get);
// reading it grants nothing on its secrets.
func TestContainerACLPrivate(t *testing.T) {
	svc := newService(t)
	sec := newSecretIn(t, svc, creator, "inside")
	c := newGeneric(t, svc, creator, "k", sec)
	guest := kms.Identity{Project: "p2", User: "gus", Roles: []string{kms.RoleObserver}}
	users, no := []string{"gus", "olga", "gus"}, false
	acl, err := svc.SetContainerACL(ctx, creator, c.ID, kms.ACLChange{Users: &users, ProjectAccess: &no, Replace: true})
	if err != nil || acl.ProjectAccess || !slices.Equal(acl.Users, []string{"gus", "olga"}) || acl.Created.IsZero() {
		t.Fatalf("set: %+v %v", acl, err)
	}
	for _, who := range []kms.Identity{creator, admin, observer, guest} {
		got, err := svc.GetContainer(ctx, who, c.ID)
		if err != nil || secretNames(got) != "k" {
			t.Fatalf("%s reads: %+v %v", who.User, got, err)
		}
	}
	for _, who := range []kms.Identity{creator2, auditor, other} {
		_, err := svc.GetContainer(ctx, who, c.ID)
		mustKind(t, err, kms.KindForbidden)
		_, _, err = svc.ListContainerConsumers(ctx, who, c.ID, 0, 0)
		mustKind(t, err, kms.KindForbidden)
	}
	// The ACL user of another project reads the container, not its secret.
	_, err = svc.GetSecret(ctx, guest, sec, kms.View{})
	mustKind(t, err, kms.KindForbidden)
	// It may register a consumer (container_consumers:post), as a reader.
	if _, err := svc.AddContainerConsumer(ctx, guest, c.ID, kms.ContainerConsumer{Name: "lb", URL: "u"}); err != nil {
		t.Fatal(err)
	}
	// Listing shows what a GET would.
	for who, want := range map[*kms.Identity]int{&creator: 1, &creator2: 0, &observer: 1} {
		if _, total, err := svc.ListContainers(ctx, *who, kms.ContainerQuery{}); err != nil || total != want {
			t.Errorf("%s lists %d, want %d: %v", who.User, total, want, err)
		}
	}
	// A private container still belongs to its project's admin and creator-owner.
	_, err = svc.AddContainerSecret(ctx, creator2, c.ID, kms.ContainerSecret{Name: "x", SecretID: newSecretIn(t, svc, creator2, "x")})
	mustKind(t, err, kms.KindForbidden)
	if _, err := svc.AddContainerSecret(ctx, creator, c.ID, kms.ContainerSecret{Name: "y", SecretID: newSecretIn(t, svc, creator, "y")}); err != nil {
		t.Fatal(err)
	}

	// Back to the project: the ACL users stay, project access returns.
	yes := true
	if _, err := svc.SetContainerACL(ctx, admin, c.ID, kms.ACLChange{ProjectAccess: &yes}); err != nil {
		t.Fatal(err)
	}
	for _, who := range []kms.Identity{creator2, auditor, guest} {
		if _, err := svc.GetContainer(ctx, who, c.ID); err != nil {
			t.Fatalf("%s after PATCH: %v", who.User, err)
		}
	}
	if err := svc.DeleteContainerACL(ctx, creator, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = svc.GetContainer(ctx, guest, c.ID)
	mustKind(t, err, kms.KindForbidden)
	if acl, err := svc.GetContainerACL(ctx, observer, c.ID); err != nil || !acl.ProjectAccess || acl.Users != nil || !acl.Created.IsZero() {
		t.Fatalf("after delete: %+v %v", acl, err)
	}
}

// Who sees and who changes a container's ACL: Barbican's container_acls
// rules; changing as for a secret's ACL.
func TestContainerACLPolicy(t *testing.T) {
	svc := newService(t)
	c := newGeneric(t, svc, creator)
	users := []string{"eve"}
	for _, who := range []kms.Identity{creator2, observer, auditor, other} {
		_, err := svc.SetContainerACL(ctx, who, c.ID, kms.ACLChange{Users: &users})
		mustKind(t, err, kms.KindForbidden)
		mustKind(t, svc.DeleteContainerACL(ctx, who, c.ID), kms.KindForbidden)
	}
	merged, err := svc.SetContainerACL(ctx, creator, c.ID, kms.ACLChange{Users: &users})
	if err != nil || !merged.ProjectAccess || !slices.Equal(merged.Users, users) {
		t.Fatalf("merge into none: %+v %v", merged, err)
	}
	// Another project's ACL user reads the container, not its ACL; audit
	// neither sees the ACL (container_acls:get is all but audit).
	eve := kms.Identity{Project: "p2", User: "eve", Roles: []string{kms.RoleCreator}}
	if _, err := svc.GetContainer(ctx, eve, c.ID); err != nil {
		t.Fatal(err)
	}
	for _, who := range []kms.Identity{eve, auditor} {
		_, err := svc.GetContainerACL(ctx, who, c.ID)
		mustKind(t, err, kms.KindForbidden)
	}
	for _, who := range []kms.Identity{admin, creator2, observer} {
		if acl, err := svc.GetContainerACL(ctx, who, c.ID); err != nil || !slices.Equal(acl.Users, users) {
			t.Fatalf("%s reads the ACL: %+v %v", who.User, acl, err)
		}
	}
	// Replace: what is not given is reset; created stays.
	none := []string{}
	replaced, err := svc.SetContainerACL(ctx, admin, c.ID, kms.ACLChange{Users: &none, Replace: true})
	if err != nil || !replaced.ProjectAccess || len(replaced.Users) != 0 || !replaced.Created.Equal(merged.Created) {
		t.Fatalf("replace: %+v %v", replaced, err)
	}
	_, err = svc.GetContainerACL(ctx, admin, "0190a0a0-0000-7000-8000-000000000000")
	mustKind(t, err, kms.KindNotFound)
	// Secrets keep their own ACLs: the container's changed none.
	sec := newSecretIn(t, svc, creator, "s")
	if acl, err := svc.GetACL(ctx, creator, sec); err != nil || !acl.ProjectAccess || acl.Users != nil {
		t.Fatalf("secret ACL %+v %v", acl, err)
	}
}

// ACL changes are container changes: on the audit trail.
func TestContainerACLChangesAudited(t *testing.T) {
	svc, audit := newAudited(t, nil)
	c := newGeneric(t, svc, creator)
	no := false
	if _, err := svc.SetContainerACL(ctx, creator, c.ID, kms.ACLChange{ProjectAccess: &no}); err != nil {
		t.Fatal(err)
	}
	mustKind(t, svc.DeleteContainerACL(ctx, observer, c.ID), kms.KindForbidden)
	if err := svc.DeleteContainerACL(ctx, admin, c.ID); err != nil {
		t.Fatal(err)
	}
	d := "container " + c.ID
	checkTrail(t, audit, "container_create:ok:"+d, "container_acl_set:ok:"+d, "container_acl_delete:forbidden:"+d, "container_acl_delete:ok:"+d)
}
