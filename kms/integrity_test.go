package kms_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/store"
	"github.com/keywarden/keywarden/kms/store/etcd"
	"github.com/keywarden/keywarden/tests/etcdtest"
)

// Somebody with write access to the store (the bolt file, etcd) but not
// the master key edits a record to grant access, to switch its policy or
// to put back an older copy: the server notices, serves nothing of it and
// audits the event.
func TestEditedStoreIsRefused(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) store.Store{
		"bolt": func(t *testing.T) store.Store {
			st, _ := newStore(t)
			return st
		},
		"etcd": func(t *testing.T) store.Store {
			st, err := etcd.Open(etcd.Config{Endpoints: []string{etcdtest.Start(t)}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			_, root := newStore(t)
			audit := &memAudit{}
			svc := newServiceWith(t, kms.Config{Store: st, Master: root, Audit: audit, Logger: slog.New(slog.DiscardHandler)})
			mallory := kms.Identity{Project: "p9", User: "mallory", Roles: []string{kms.RoleCreator}}
			private := storeKey(t, svc, creator, kms.CreateRequest{Name: "private"})
			if _, err := svc.SetACL(ctx, creator, private.ID, kms.ACLChange{ProjectAccess: ptr(false)}); err != nil {
				t.Fatal(err)
			}
			kept := storeKey(t, svc, creator, kms.CreateRequest{Name: "kept"})
			untouched := storeKey(t, svc, creator, kms.CreateRequest{Name: "untouched"})

			// 1. Grant mallory the ACL by editing the stored record.
			edit(t, st, creator.Project, private.ID, fields(t, func(m map[uint64]any) {
				m[21].(map[any]any)["users"] = []any{"mallory"} // 21: acl
			}))
			_, _, err := svc.GetPayload(ctx, mallory, private.ID)
			mustTampered(t, err)
			_, _, err = svc.GetPayload(ctx, creator, private.ID)
			mustTampered(t, err) // nothing of it is served, not even to its owner

			// 2. Switch a kept secret to auto-destroy.
			edit(t, st, creator.Project, kept.ID, fields(t, func(m map[uint64]any) {
				m[23] = "on_last_consumer" // 23: deletion_policy
			}))
			_, err = svc.GetSecret(ctx, creator, kept.ID, kms.View{})
			mustTampered(t, err)

			// 3. Put back an older copy after a change (the version moved).
			old := raw(t, st, creator.Project, untouched.ID)
			if _, err := svc.SetACL(ctx, creator, untouched.ID, kms.ACLChange{ProjectAccess: ptr(false)}); err != nil {
				t.Fatal(err)
			}
			edit(t, st, creator.Project, untouched.ID, func([]byte) []byte { return old })
			_, err = svc.GetSecret(ctx, admin, untouched.ID, kms.View{})
			mustTampered(t, err)

			// Tampered records are not listed; the rest still is.
			if _, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "fresh"}); err != nil {
				t.Fatal(err)
			}
			list, _, err := svc.ListSecrets(ctx, admin, kms.ListQuery{})
			if err != nil || len(list) != 1 || list[0].Name != "fresh" {
				t.Fatalf("list after tampering: %d %v", len(list), err)
			}
			// 4. A container opened to another project by an edit.
			c, err := svc.CreateContainer(ctx, creator, kms.ContainerRequest{Type: "generic", Name: "c"})
			if err != nil {
				t.Fatal(err)
			}
			key := "c/" + creator.Project + "/" + c.ID
			kv, err := st.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			edited := bytes.Replace(kv.Value, []byte(`"name":"c"`), []byte(`"name":"c","acl":{"users":["mallory"],"project_access":true}`), 1)
			if err := st.Txn(ctx, []store.Cmp{{Key: key, Version: kv.Version}}, []store.Op{store.Put(key, edited)}); err != nil {
				t.Fatal(err)
			}
			_, err = svc.GetContainer(ctx, mallory, c.ID)
			mustTampered(t, err)
			if cs, _, err := svc.ListContainers(ctx, admin, kms.ContainerQuery{}); err != nil || len(cs) != 0 {
				t.Fatalf("an edited container was listed: %d %v", len(cs), err)
			}
			if n := countActions(audit, "integrity_failure", "error"); n < 4 {
				t.Fatalf("%d integrity_failure records, want at least 4", n)
			}
		})
	}
}

func mustTampered(t *testing.T, err error) {
	t.Helper()
	if kms.KindOf(err) != kms.KindInternal || !strings.Contains(err.Error(), "integrity") {
		t.Fatalf("err = %v, want an integrity failure", err)
	}
}

func recordKeyOf(project, id string) string { return "p/" + project + "/" + id }

func raw(t *testing.T, st store.Store, project, id string) []byte {
	t.Helper()
	kv, err := st.Get(context.Background(), recordKeyOf(project, id))
	if err != nil {
		t.Fatal(err)
	}
	return kv.Value
}

// fields is an edit of a stored record's fields by their cbor keys
// (Secret's struct tags), keeping its tag.
func fields(t *testing.T, f func(m map[uint64]any)) func([]byte) []byte {
	return func(b []byte) []byte {
		out, err := kms.EditRecordFields(b, f)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// edit rewrites a stored record the way an attacker with store access
// would: through the store, without the master key.
func edit(t *testing.T, st store.Store, project, id string, f func([]byte) []byte) {
	t.Helper()
	key := recordKeyOf(project, id)
	kv, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	b := f(bytes.Clone(kv.Value))
	if bytes.Equal(b, kv.Value) {
		t.Fatal("the edit changed nothing")
	}
	if err := st.Txn(context.Background(), []store.Cmp{{Key: key, Version: kv.Version}}, []store.Op{store.Put(key, b)}); err != nil {
		t.Fatal(err)
	}
}

// Records written before they were CBOR are JSON: they are still served,
// still checked, and become CBOR on their next write.
func TestLegacyJSONRecords(t *testing.T) {
	st, root := newStore(t)
	audit := &memAudit{}
	svc := newServiceWith(t, kms.Config{Store: st, Master: root, Audit: audit, Logger: slog.New(slog.DiscardHandler)})
	var payloads = map[string][]byte{}
	legacy := func(name string) *kms.Secret {
		s := storeKey(t, svc, creator, kms.CreateRequest{Name: name, Metadata: map[string]string{"disk": name}})
		if _, pt, err := svc.GetPayload(ctx, creator, s.ID); err != nil {
			t.Fatal(err)
		} else {
			payloads[s.ID] = pt
		}
		kv, err := st.Get(ctx, recordKeyOf(creator.Project, s.ID))
		if err != nil {
			t.Fatal(err)
		}
		if kv.Value[0] == '{' {
			t.Fatal("a new record is stored as JSON, want CBOR")
		}
		b, err := svc.LegacyJSONRecord(ctx, creator.Project, s.ID, kv.Version+1)
		if err != nil {
			t.Fatal(err)
		}
		edit(t, st, creator.Project, s.ID, func([]byte) []byte { return b })
		return s
	}

	a := legacy("a")
	got, pt, err := svc.GetPayload(ctx, creator, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "a" || got.Metadata["disk"] != "a" || !got.Created.Equal(a.Created) || !bytes.Equal(pt, payloads[a.ID]) {
		t.Fatalf("legacy record read back as %+v (%d bytes of payload)", got, len(pt))
	}
	if _, err := svc.SetACL(ctx, creator, a.ID, kms.ACLChange{ProjectAccess: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if raw(t, st, creator.Project, a.ID)[0] == '{' {
		t.Fatal("a write left the record JSON")
	}
	if _, _, err := svc.GetPayload(ctx, creator, a.ID); err != nil {
		t.Fatal(err)
	}

	b := legacy("b")
	edit(t, st, creator.Project, b.ID, func(v []byte) []byte {
		return bytes.Replace(v, []byte(`"name":"b"`), []byte(`"name":"b","deletion_policy":"on_last_consumer"`), 1)
	})
	_, err = svc.GetSecret(ctx, creator, b.ID, kms.View{})
	mustTampered(t, err)
}
