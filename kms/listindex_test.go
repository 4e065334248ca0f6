package kms_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/store"
	"github.com/keywarden/keywarden/kms/store/bolt"
	"github.com/keywarden/keywarden/kms/store/etcd"
	"github.com/keywarden/keywarden/tests/etcdtest"
)

// tickClock moves on by step at every reading, so creation times are
// distinct, their order differs from the ids' under concurrency, and they
// spread over many fence windows.
type tickClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *tickClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *tickClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func listBackends() map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"bolt": func(t *testing.T) store.Store {
			st, err := bolt.Open(filepath.Join(t.TempDir(), "kw.db"), bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
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
	}
}

// TestListIndex: after concurrent creates, deletes and changes of every
// kind a listing reads (ACLs, states, expiry), the index equals a full read
// of the records, the counter equals the plain entries, and every list (at
// deep offsets, filtered, sorted, by every kind of caller) equals the
// whole-project listing, total included. A store without the index gets it
// at start-up and lists the same.
func TestListIndex(t *testing.T) {
	for name, open := range listBackends() {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			_, root := newStore(t)
			base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			clk := &tickClock{t: base, step: 97 * time.Millisecond}
			cfg := kms.Config{Store: st, Master: root, Now: clk.now, Logger: slog.New(slog.DiscardHandler)}
			svc, err := kms.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			fillForLists(t, svc, clk, base)
			for _, p := range []string{"p1", "p2"} {
				if err := svc.CheckListIndex(ctx, p); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
			}
			compareLists(t, svc, base)

			// A policy under which callers see only their own secrets:
			// no caller may read every plain entry, each is checked.
			own := cfg
			own.Policy = map[string]string{"secret:get": "rule:project_admin or rule:project_owner"}
			svcOwn, err := kms.New(own)
			if err != nil {
				t.Fatal(err)
			}
			compareLists(t, svcOwn, base)

			// The same store as one whose index predates ln/ and nv/
			// (session 5): they are built from l/ at start-up.
			if err := svc.DropNameIndex(ctx); err != nil {
				t.Fatal(err)
			}
			svc1, err := kms.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"p1", "p2"} {
				if err := svc1.CheckListIndex(ctx, p); err != nil {
					t.Fatalf("after the name index build, %s: %v", p, err)
				}
			}
			compareLists(t, svc1, base)

			// The same store as one written before the index: built at
			// start-up, then the same answers.
			if err := svc.DropListIndex(ctx); err != nil {
				t.Fatal(err)
			}
			svc2, err := kms.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"p1", "p2"} {
				if err := svc2.CheckListIndex(ctx, p); err != nil {
					t.Fatalf("after the build, %s: %v", p, err)
				}
			}
			compareLists(t, svc2, base)
		})
	}
}

// fillForLists writes p1's secrets from 6 goroutines, deleting some as it
// goes, then makes some private, shared, destroyed and expired; p2 gets a
// few.
func fillForLists(t *testing.T, svc *kms.Service, clk *tickClock, base time.Time) {
	t.Helper()
	algs := []string{"aes", "AES", "des", ""}
	types := []kms.SecretType{kms.Symmetric, kms.Opaque, kms.Passphrase}
	who := []kms.Identity{admin, creator, creator2}
	var mu sync.Mutex
	var kept []*kms.Secret
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				n := g*40 + i
				req := kms.CreateRequest{
					Name: fmt.Sprintf("n%03d", n%97), Algorithm: algs[n%4], BitLength: []int{128, 256, 0}[n%3],
					Mode: []string{"cbc", "xts"}[n%2], Type: types[n%3],
				}
				if n%5 == 0 {
					exp := base.Add(5*time.Minute + time.Duration(n)*time.Second)
					req.Expiration = &exp
				}
				if n%6 == 1 {
					req.State = kms.PreActive
					act := base.Add(time.Duration(n-120) * time.Second)
					req.ActivationDate = &act
				}
				if n%2 == 0 {
					req.Payload, req.ContentType = []byte("x"), "text/plain"
				}
				sec, err := svc.CreateSecret(ctx, who[n%3], req)
				if err != nil {
					errs <- err
					return
				}
				if n%7 == 3 {
					if err := svc.DeleteSecret(ctx, admin, sec.ID, false); err != nil {
						errs <- err
					}
					continue
				}
				mu.Lock()
				kept = append(kept, sec)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, sec := range kept {
		var err error
		switch i % 11 {
		case 1:
			_, err = svc.SetACL(ctx, kms.Identity{Project: "p1", User: sec.Creator, Roles: []string{kms.RoleCreator}}, sec.ID, kms.ACLChange{ProjectAccess: ptr(false)})
		case 2:
			_, err = svc.SetACL(ctx, admin, sec.ID, kms.ACLChange{Users: &[]string{"olga"}})
		case 3:
			if sec.State == kms.Active {
				if _, err = svc.Revoke(ctx, admin, sec.ID, false, nil); err == nil {
					err = svc.Destroy(ctx, admin, sec.ID)
				}
			}
		case 4:
			if sec.State == kms.Active {
				_, err = svc.Revoke(ctx, admin, sec.ID, true, nil)
			}
		}
		if err != nil {
			t.Fatalf("change %d of %s: %v", i, sec.ID, err)
		}
	}
	for i := range 5 {
		if _, err := svc.CreateSecret(ctx, other, kms.CreateRequest{Name: fmt.Sprint("other", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Names that order tricky: empty, a 0x00 inside, one a prefix of
	// another, equal names with ids either way of created.
	names := []string{"", "n0", "n0\x00", "n0\x00a", "n0\x00\x00", "n0\x01", "", "n0"}
	for range 30 { // a name's group longer than a page: desc pages start inside it
		names = append(names, "grp")
	}
	for _, name := range names {
		if _, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: name, Algorithm: "aes"}); err != nil {
			t.Fatal(err)
		}
	}
	// A key pair writes two records in one transaction.
	for range 2 {
		if _, _, err := svc.CreateKeyPair(ctx, creator, kms.KeyPairRequest{Algorithm: "ec", BitLength: 256}); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(5*time.Minute + 100*time.Second) // some expirations pass
	clk.mu.Lock()
	clk.step = 0 // the lists compared see the same now
	clk.mu.Unlock()
}

func compareLists(t *testing.T, svc *kms.Service, base time.Time) {
	t.Helper()
	desc := []kms.SortKey{{Field: "created", Desc: true}}
	queries := []kms.ListQuery{
		{}, {Limit: 10}, {Offset: 5, Limit: 10}, {Offset: 57, Limit: 25}, {Offset: 150, Limit: 100},
		{Offset: 10000, Limit: 10}, {Offset: 3},
		{Sort: desc, Offset: 13, Limit: 20}, {Sort: desc, Limit: 1000}, {Sort: desc, Offset: 190, Limit: 100},
		{Sort: []kms.SortKey{{Field: "created"}}, Offset: 40, Limit: 40},
		{Sort: []kms.SortKey{{Field: "name"}}, Offset: 10, Limit: 30},
		{Sort: []kms.SortKey{{Field: "bit_length", Desc: true}, {Field: "name"}}, Offset: 100, Limit: 30},
		{Sort: []kms.SortKey{{Field: "expiration"}}, Limit: 30},
		{Sort: []kms.SortKey{{Field: "updated", Desc: true}}, Offset: 1, Limit: 7},
		{Name: "n01", Limit: 5}, {Name: "N0", Offset: 20, Limit: 10}, {ExactName: "n042"},
		{Name: "n0", Sort: desc, Offset: 7, Limit: 11}, {Algorithm: "aes", Sort: desc}, {Mode: "cbc", Offset: 30, Limit: 20},
		{Type: kms.Symmetric, Sort: desc, Offset: 40, Limit: 50}, {Type: kms.Opaque, Sort: desc, Offset: 1000, Limit: 5},
		{Algorithm: "aes", Offset: 3, Limit: 7}, {Mode: "XTS", Limit: 50}, {Type: kms.Symmetric},
		{BitLength: 256, Sort: []kms.SortKey{{Field: "updated", Desc: true}}},
		{Expiration: []kms.TimeFilter{{Op: "gt", T: base}}}, {State: kms.PreActive}, {State: kms.Active, Offset: 50, Limit: 50},
		{State: kms.Compromised}, {View: kms.View{Destroyed: true}, Offset: 20, Limit: 50},
		{View: kms.View{Destroyed: true}, Sort: desc, Offset: 2, Limit: 9}, {View: kms.View{Destroyed: true}, State: kms.Destroyed},
		{View: kms.View{Expired: true}, Offset: 3, Limit: 40}, {View: kms.View{Expired: true, Destroyed: true}, Sort: desc, Limit: 30},
		{View: kms.View{Expired: true}, Name: "n0", Offset: 2, Limit: 9},
		{Algorithm: "zz"}, {Algorithm: "zz", View: kms.View{Destroyed: true}}, {BitLength: 7, Name: "n0"},
		{Algorithm: "ES", Offset: 60, Limit: 10}, {Algorithm: "ES", Sort: desc, Offset: 60, Limit: 10},
		{Algorithm: "ES", Sort: desc, Offset: 1, Limit: 1000}, {Algorithm: "aes", Mode: "cb", BitLength: 128, Sort: desc, Offset: 3, Limit: 4},
		{Type: kms.Opaque, Sort: desc, Offset: 2, Limit: 2}, {Type: kms.Opaque, Sort: []kms.SortKey{{Field: "name", Desc: true}}},
		{Type: kms.Opaque, Offset: 1, Limit: 3, View: kms.View{Expired: true}},
		{Sort: []kms.SortKey{{Field: "name", Desc: true}}}, {Sort: []kms.SortKey{{Field: "name"}}, Offset: 150, Limit: 100},
		{Sort: []kms.SortKey{{Field: "name", Desc: true}}, Offset: 120, Limit: 50},
		{Sort: []kms.SortKey{{Field: "name", Desc: true}}, View: kms.View{Expired: true, Destroyed: true}, Offset: 7, Limit: 20},
		{Created: []kms.TimeFilter{{Op: "gte", T: base.Add(30 * time.Second)}}, Limit: 10},
		{Updated: []kms.TimeFilter{{Op: "lt", T: base.Add(20 * time.Second)}}, Offset: 4, Limit: 10},
	}
	callers := []kms.Identity{admin, creator, creator2, observer, auditor, other}
	for _, who := range callers {
		for _, q := range queries {
			got, gotTotal, gotErr := svc.ListSecrets(ctx, who, q)
			want, wantTotal, wantErr := svc.ListRecords(ctx, who, q)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%s %+v: error %v, want %v", who.User, q, gotErr, wantErr)
			}
			if ids(got) != ids(want) || gotTotal != wantTotal {
				t.Fatalf("%s %+v:\n got %d %s\nwant %d %s", who.User, q, gotTotal, ids(got), wantTotal, ids(want))
			}
		}
	}
	// The page at every offset of the whole listing is its slice.
	if _, total, err := svc.ListRecords(ctx, admin, kms.ListQuery{}); err != nil || total < 100 {
		t.Fatalf("admin sees %d (%v)", total, err)
	}
	for _, sort := range [][]kms.SortKey{nil, {{Field: "name"}}, {{Field: "name", Desc: true}}} {
		all, total, err := svc.ListRecords(ctx, admin, kms.ListQuery{Sort: sort})
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < total; off += 9 {
			got, gotTotal, err := svc.ListSecrets(ctx, admin, kms.ListQuery{Offset: off, Limit: 9, Sort: sort})
			if err != nil || gotTotal != total || ids(got) != ids(all[off:min(off+9, total)]) {
				t.Fatalf("%v page at %d: %s, want %s (%v)", sort, off, ids(got), ids(all[off:min(off+9, total)]), err)
			}
		}
	}
}

func ids(list []*kms.Secret) string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID[len(s.ID)-6:]
	}
	return fmt.Sprint(slices.Clip(out))
}
