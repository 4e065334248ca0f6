package kms_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/kmstest"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

// newStore opens a fresh bolt store and root key for a test.
func newStore(t testing.TB) (*bolt.Store, *crypto.RootKey) { return kmstest.Bolt(t) }

// newServiceWith builds a Service on a fresh store from cfg's other fields.
func newServiceWith(t testing.TB, cfg kms.Config) *kms.Service { return kmstest.Service(t, cfg) }

func newService(t testing.TB) *kms.Service { return newServiceWith(t, kms.Config{}) }

var (
	ctx      = context.Background()
	admin    = kms.Identity{Project: "p1", User: "alice", Roles: []string{kms.RoleAdmin}}
	creator  = kms.Identity{Project: "p1", User: "bob", Roles: []string{kms.RoleCreator}}
	creator2 = kms.Identity{Project: "p1", User: "carol", Roles: []string{kms.RoleCreator}}
	observer = kms.Identity{Project: "p1", User: "olga", Roles: []string{kms.RoleObserver}}
	auditor  = kms.Identity{Project: "p1", User: "aud", Roles: []string{kms.RoleAudit}}
	other    = kms.Identity{Project: "p2", User: "eve", Roles: []string{kms.RoleAdmin}}
)

func mustKind(t *testing.T, err error, want kms.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error of kind %v, got nil", want)
	}
	if got := kms.KindOf(err); got != want {
		t.Fatalf("want kind %v, got %v (%v)", want, got, err)
	}
}

func TestCreateReadPayload(t *testing.T) {
	svc := newService(t)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{
		Name: "vol-1", Type: kms.Passphrase, Payload: []byte("hunter2"), ContentType: "text/plain",
	})
	if err != nil {
		t.Fatal(err)
	}
	if sec.State != kms.Active || !sec.HasPayload || sec.Creator != "bob" || sec.Project != "p1" {
		t.Fatalf("unexpected secret %+v", sec)
	}
	got, pt, err := svc.GetPayload(ctx, observer, sec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(pt) != "hunter2" || got.ContentType != "text/plain" {
		t.Fatalf("payload %q type %q", pt, got.ContentType)
	}
	// audit may read metadata but not the payload.
	if _, err := svc.GetSecret(ctx, auditor, sec.ID, kms.View{}); err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.GetPayload(ctx, auditor, sec.ID)
	mustKind(t, err, kms.KindForbidden)
	// Another project: forbidden, not hidden.
	_, err = svc.GetSecret(ctx, other, sec.ID, kms.View{})
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.GetSecret(ctx, admin, "00000000-0000-0000-0000-000000000000", kms.View{})
	mustKind(t, err, kms.KindNotFound)
}

func TestCreateRules(t *testing.T) {
	svc := newService(t)
	_, err := svc.CreateSecret(ctx, observer, kms.CreateRequest{Name: "x"})
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{Payload: make([]byte, kms.DefaultMaxPayload+1), ContentType: "application/octet-stream"})
	mustKind(t, err, kms.KindTooLarge)
	past := time.Now().Add(-time.Hour)
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{Expiration: &past})
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{Payload: []byte("x")})
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: "weird"})
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.CreateSecret(ctx, creator, kms.CreateRequest{Metadata: map[string]string{"bad key": "v"}})
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.CreateSecret(ctx, kms.Identity{Project: "a/b", Roles: []string{"admin"}}, kms.CreateRequest{})
	mustKind(t, err, kms.KindUnauthenticated)
}

func TestTwoStepPayload(t *testing.T) {
	svc := newService(t)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "two-step"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.GetPayload(ctx, creator, sec.ID)
	mustKind(t, err, kms.KindNotFound)
	if err := svc.PutPayload(ctx, creator, sec.ID, []byte{1, 2, 3}, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	mustKind(t, svc.PutPayload(ctx, creator, sec.ID, []byte{4}, "application/octet-stream"), kms.KindConflict)
	_, pt, err := svc.GetPayload(ctx, creator, sec.ID)
	if err != nil || !bytes.Equal(pt, []byte{1, 2, 3}) {
		t.Fatalf("payload %v, %v", pt, err)
	}
}

func TestExpiredIsGone(t *testing.T) {
	svc := newService(t)
	exp := time.Now().Add(150 * time.Millisecond)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "short", Expiration: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	_, err = svc.GetSecret(ctx, creator, sec.ID, kms.View{})
	mustKind(t, err, kms.KindNotFound)
	list, total, err := svc.ListSecrets(ctx, creator, kms.ListQuery{})
	if err != nil || total != 0 || len(list) != 0 {
		t.Fatalf("expired secret listed: %d %v", total, err)
	}
}

func TestACLPrivateSecret(t *testing.T) {
	svc := newService(t)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Payload: []byte("k"), ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	// A fellow creator can read and delete a non-private secret's payload...
	if _, _, err := svc.GetPayload(ctx, creator2, sec.ID); err != nil {
		t.Fatal(err)
	}
	// ...but cannot change its ACL; the owner can.
	no := false
	_, err = svc.SetACL(ctx, creator2, sec.ID, kms.ACLChange{ProjectAccess: &no, Replace: true})
	mustKind(t, err, kms.KindForbidden)
	users := []string{"eve"}
	if _, err := svc.SetACL(ctx, creator, sec.ID, kms.ACLChange{ProjectAccess: &no, Users: &users, Replace: true}); err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.GetPayload(ctx, creator2, sec.ID)
	mustKind(t, err, kms.KindForbidden)
	mustKind(t, svc.DeleteSecret(ctx, creator2, sec.ID, false), kms.KindForbidden)
	// The ACL user of another project can read it; the admin still can.
	if _, _, err := svc.GetPayload(ctx, other, sec.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.GetPayload(ctx, admin, sec.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteSecret(ctx, creator, sec.ID, false); err != nil {
		t.Fatal(err)
	}
}

func TestListFiltersSortPaging(t *testing.T) {
	svc := newService(t)
	for i, n := range []string{"charlie", "alpha", "bravo", "alpha-2"} {
		_, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: n, Algorithm: "aes", BitLength: 128 * (i + 1), Type: kms.Symmetric})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.CreateSecret(ctx, other, kms.CreateRequest{Name: "alpha-other"}); err != nil {
		t.Fatal(err)
	}
	list, total, err := svc.ListSecrets(ctx, observer, kms.ListQuery{Name: "alpha", Sort: []kms.SortKey{{Field: "name", Desc: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || list[0].Name != "alpha-2" || list[1].Name != "alpha" {
		t.Fatalf("name filter/sort: total %d %v", total, names(list))
	}
	list, total, _ = svc.ListSecrets(ctx, observer, kms.ListQuery{Sort: []kms.SortKey{{Field: "name"}}, Offset: 1, Limit: 2})
	if total != 4 || len(list) != 2 || list[0].Name != "alpha-2" || list[1].Name != "bravo" {
		t.Fatalf("paging: total %d %v", total, names(list))
	}
	list, _, _ = svc.ListSecrets(ctx, observer, kms.ListQuery{BitLength: 256})
	if len(list) != 1 || list[0].Name != "alpha" {
		t.Fatalf("bits filter: %v", names(list))
	}
	_, _, err = svc.ListSecrets(ctx, auditor, kms.ListQuery{})
	mustKind(t, err, kms.KindForbidden)
	_, _, err = svc.ListSecrets(ctx, observer, kms.ListQuery{Sort: []kms.SortKey{{Field: "payload"}}})
	mustKind(t, err, kms.KindInvalid)
}

func names(l []*kms.Secret) []string {
	var out []string
	for _, s := range l {
		out = append(out, s.Name)
	}
	return out
}

func TestMetadata(t *testing.T) {
	svc := newService(t)
	sec, _ := svc.CreateSecret(ctx, creator, kms.CreateRequest{Metadata: map[string]string{"OS_Encrypt_Format": "luks"}})
	m, err := svc.GetMetadata(ctx, observer, sec.ID)
	if err != nil || m["os_encrypt_format"] != "luks" {
		t.Fatalf("metadata not lowercased: %v %v", m, err)
	}
	mustKind(t, svc.SetMetadatum(ctx, creator, sec.ID, "os_encrypt_format", "x", true), kms.KindConflict)
	mustKind(t, svc.SetMetadatum(ctx, creator, sec.ID, "nope", "x", false), kms.KindNotFound)
	mustKind(t, svc.SetMetadatum(ctx, observer, sec.ID, "k", "v", true), kms.KindForbidden)
	if err := svc.SetMetadatum(ctx, creator, sec.ID, "k", "v", true); err != nil {
		t.Fatal(err)
	}
	if v, _ := svc.GetMetadatum(ctx, observer, sec.ID, "K"); v != "v" {
		t.Fatalf("got %q", v)
	}
	if err := svc.DeleteMetadatum(ctx, creator, sec.ID, "k"); err != nil {
		t.Fatal(err)
	}
	mustKind(t, svc.DeleteMetadatum(ctx, creator, sec.ID, "k"), kms.KindNotFound)
}

func TestGenerate(t *testing.T) {
	svc := newService(t)
	key, err := svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Symmetric, BitLength: 512}})
	if err != nil {
		t.Fatal(err)
	}
	_, pt, _ := svc.GetPayload(ctx, creator, key.ID)
	if len(pt) != 64 {
		t.Fatalf("512-bit key has %d bytes", len(pt))
	}
	pp, err := svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Passphrase}})
	if err != nil {
		t.Fatal(err)
	}
	_, p1, _ := svc.GetPayload(ctx, creator, pp.ID)
	pp2, _ := svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Passphrase}})
	_, p2, _ := svc.GetPayload(ctx, creator, pp2.ID)
	if len(p1) < 43 || bytes.Equal(p1, p2) {
		t.Fatalf("passphrases %q %q", p1, p2)
	}
	_, err = svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Symmetric, BitLength: 100}})
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.GenerateSecret(ctx, creator, kms.GenerateRequest{CreateRequest: kms.CreateRequest{Type: kms.Passphrase},
		Passphrase: &crypto.PassphrasePolicy{Length: 12, Alphabet: "ab"}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKMIPLifecycle(t *testing.T) {
	svc := newService(t)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, State: kms.PreActive, Payload: make([]byte, 32), ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Activate(ctx, creator, sec.ID); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Activate(ctx, creator, sec.ID)
	mustKind(t, err, kms.KindWrongState)
	mustKind(t, svc.Destroy(ctx, creator, sec.ID), kms.KindWrongState)
	_, err = svc.Revoke(ctx, observer, sec.ID, false, nil)
	mustKind(t, err, kms.KindForbidden)
	got, err := svc.Revoke(ctx, creator, sec.ID, false, nil)
	if err != nil || got.State != kms.Deactivated || got.DeactivationDate == nil {
		t.Fatalf("revoke: %+v %v", got, err)
	}
	if err := svc.Destroy(ctx, creator, sec.ID); err != nil {
		t.Fatal(err)
	}
	obj, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{Destroyed: true})
	if err != nil || obj.State != kms.Destroyed || obj.HasPayload {
		t.Fatalf("destroyed object: %+v %v", obj, err)
	}
	_, err = svc.GetSecret(ctx, creator, sec.ID, kms.View{})
	mustKind(t, err, kms.KindNotFound)
	_, _, err = svc.GetPayload(ctx, creator, sec.ID)
	mustKind(t, err, kms.KindNotFound)
}

func TestConcurrentUpdatesAreNotLost(t *testing.T) {
	svc := newService(t)
	sec, _ := svc.CreateSecret(ctx, creator, kms.CreateRequest{})
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := string(rune('a'+i%26)) + string(rune('a'+i/26))
			if err := svc.SetMetadatum(ctx, creator, sec.ID, k, "v", true); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	m, _ := svc.GetMetadata(ctx, creator, sec.ID)
	if len(m) != 32 {
		t.Fatalf("lost updates: %d keys of 32", len(m))
	}
}

func TestListACLOnly(t *testing.T) {
	svc := newService(t)
	mk := func(name string) *kms.Secret {
		sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return sec
	}
	shared, kept, gone := mk("shared"), mk("kept"), mk("gone")
	eve := []string{"eve"}
	for _, s := range []*kms.Secret{shared, gone} {
		if _, err := svc.SetACL(ctx, creator, s.ID, kms.ACLChange{Users: &eve}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.CreateSecret(ctx, other, kms.CreateRequest{Name: "eves-own"}); err != nil {
		t.Fatal(err)
	}
	aclNames := func(who kms.Identity) []string {
		t.Helper()
		l, total, err := svc.ListSecrets(ctx, who, kms.ListQuery{ACLOnly: true, Sort: []kms.SortKey{{Field: "name"}}})
		if err != nil || total != len(l) {
			t.Fatalf("acl_only list: %v (total %d, %d listed)", err, total, len(l))
		}
		return names(l)
	}
	// eve (project p2) sees exactly what p1 shared with her, not her own project.
	if got := aclNames(other); !slices.Equal(got, []string{"gone", "shared"}) {
		t.Fatalf("eve's acl_only list = %v", got)
	}
	if got := aclNames(creator); len(got) != 0 {
		t.Fatalf("bob is on no ACL but lists %v", got)
	}
	// The index follows ACL changes and deletion.
	none := []string{}
	if _, err := svc.SetACL(ctx, creator, shared.ID, kms.ACLChange{Users: &none}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteSecret(ctx, creator, gone.ID, false); err != nil {
		t.Fatal(err)
	}
	if got := aclNames(other); len(got) != 0 {
		t.Fatalf("after unshare and delete eve still lists %v", got)
	}
	if _, err := svc.SetACL(ctx, creator, kept.ID, kms.ACLChange{Users: &eve, Replace: true}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteACL(ctx, creator, shared.ID); err != nil {
		t.Fatal(err)
	}
	if got := aclNames(other); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("eve's acl_only list = %v, want [kept]", got)
	}
	if err := svc.DeleteACL(ctx, creator, kept.ID); err != nil {
		t.Fatal(err)
	}
	if got := aclNames(other); len(got) != 0 {
		t.Fatalf("after DeleteACL eve still lists %v", got)
	}
}
