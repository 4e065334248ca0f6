package kms_test

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// nameQueries are name= lists the name column answers (and some it
// leaves to the scan), with needles that would match across two names if
// the sweep let a hit run past its entry.
func nameQueries() []kms.ListQuery {
	desc := []kms.SortKey{{Field: "created", Desc: true}}
	return []kms.ListQuery{
		{Name: "n0"}, {Name: "N0", Offset: 7, Limit: 9}, {Name: "n01", Limit: 5}, {Name: "n0", Sort: desc, Offset: 3, Limit: 11},
		{Name: "n0", Offset: 10000, Limit: 5}, {Name: "grp", Offset: 25, Limit: 10}, {Name: "GRP", Sort: desc, Offset: 28, Limit: 10},
		{Name: "0\x00"}, {Name: "\x00a"}, {Name: "\x00"}, {Name: "9n"}, {Name: "2n0"}, {Name: "pn0"},
		{Name: "ü"}, {Name: "Ü"}, {Name: "straße"}, {Name: "STRASSE"}, {Name: "k"}, {Name: "\u212a"}, {Name: "zzz"},
		{Name: "n", Algorithm: "aes"}, {Name: "n", Algorithm: "ES", Offset: 5, Limit: 20}, {Name: "n0", Mode: "cbc", Sort: desc},
		{Name: "n", Type: kms.Opaque, BitLength: 256, Offset: 1, Limit: 4}, {Name: "n", BitLength: 7},
		{Name: "re", Limit: 1000}, {Name: "RE", Sort: desc, Offset: 2, Limit: 3},
		{Name: "n0", View: kms.View{Expired: true}, Limit: 30}, {Name: "n0", View: kms.View{Destroyed: true}, Sort: desc},
		{Name: "n0", Sort: []kms.SortKey{{Field: "name"}}, Limit: 20}, {Name: "n0", State: kms.Active, Limit: 20},
	}
}

func compareNameLists(t *testing.T, svc *kms.Service) {
	t.Helper()
	for _, who := range []kms.Identity{admin, creator, creator2, observer, auditor, other} {
		for _, q := range nameQueries() {
			got, gotTotal, gotErr := svc.ListSecrets(ctx, who, q)
			want, wantTotal, wantErr := svc.ListRecords(ctx, who, q)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%s %+q: error %v, want %v", who.User, q.Name, gotErr, wantErr)
			}
			if ids(got) != ids(want) || gotTotal != wantTotal {
				t.Fatalf("%s %+v:\n got %d %s\nwant %d %s", who.User, q, gotTotal, ids(got), wantTotal, ids(want))
			}
		}
	}
}

// TestNameColumn: a project's name column, built by its first name= list
// and then kept by every write (creates, deletes, renames, ACL changes,
// destroys) from concurrent writers while lists run and columns are
// dropped and rebuilt under them, equals a column built afresh from the
// store, and every name= list equals the whole-project listing. On etcd
// there is no column (other nodes write): the same lists scan.
func TestNameColumn(t *testing.T) {
	for name, open := range listBackends() {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			_, root := newStore(t)
			base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			clk := &tickClock{t: base, step: 97 * time.Millisecond}
			svc, err := kms.New(kms.Config{Store: st, Master: root, Now: clk.now, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			var early []*kms.Secret
			for _, n := range []string{"Ünïcode", "STRAßE", "Kelvin \u212a", "n0 early", "pre"} {
				sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: n, Algorithm: "aes"})
				if err != nil {
					t.Fatal(err)
				}
				early = append(early, sec)
			}
			if _, _, err := svc.ListSecrets(ctx, admin, kms.ListQuery{Name: "n0"}); err != nil {
				t.Fatal(err)
			}
			if held := svc.NameColumnHeld("p1"); held != (name == "bolt") {
				t.Fatalf("column held: %v on %s", held, name)
			}

			// Writers (fillForLists: creates, deletes, ACL changes,
			// revokes, destroys; renames here) race name= lists and
			// column drops, so builds race writes too.
			var stop atomic.Bool
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for _, who := range []kms.Identity{admin, creator} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Bounded: every list reads the ticking clock, and the
					// fill's expirations must stay ahead of it.
					for i := 0; !stop.Load() && i < 80; i++ {
						time.Sleep(time.Millisecond)
						q := nameQueries()[i%len(nameQueries())]
						if _, _, err := svc.ListSecrets(ctx, who, q); err != nil {
							errs <- err
							return
						}
						if i%20 == 19 {
							svc.DropNameColumns()
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load() && i < 60; i++ {
					time.Sleep(time.Millisecond)
					sec := early[i%len(early)]
					op := kms.AttrOp{Kind: kms.AttrSet, Name: kms.AttrName, Value: fmt.Sprintf("renamed %d n0", i)}
					if i%3 == 2 {
						op.Value = "Ünïcode again"
					}
					if _, err := svc.ChangeAttribute(ctx, admin, sec.ID, op); err != nil {
						errs <- err
						return
					}
				}
			}()
			fillForLists(t, svc, clk, base)
			stop.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			// A last build, then writes of every kind on a ready column.
			if _, _, err := svc.ListSecrets(ctx, admin, kms.ListQuery{Name: "n"}); err != nil {
				t.Fatal(err)
			}
			all, _, err := svc.ListRecords(ctx, admin, kms.ListQuery{Name: "n0"})
			if err != nil {
				t.Fatal(err)
			}
			for i, sec := range all[:min(len(all), 30)] {
				switch i % 5 {
				case 0:
					err = svc.DeleteSecret(ctx, admin, sec.ID, false)
				case 1:
					_, err = svc.ChangeAttribute(ctx, admin, sec.ID, kms.AttrOp{Kind: kms.AttrSet, Name: kms.AttrName, Value: "RE" + sec.Name})
				case 2:
					_, err = svc.SetACL(ctx, admin, sec.ID, kms.ACLChange{Users: &[]string{"olga"}})
				case 3:
					_, err = svc.ChangeAttribute(ctx, admin, sec.ID, kms.AttrOp{Kind: kms.AttrSet, Name: kms.AttrName, Value: "x"})
				}
				if err != nil {
					t.Fatalf("change %d: %v", i, err)
				}
			}
			if name == "bolt" {
				if !svc.NameColumnHeld("p1") {
					t.Fatal("no column after a name= list")
				}
				if err := svc.CheckNameColumn(ctx, "p1"); err != nil {
					t.Fatal(err)
				}
			}
			compareNameLists(t, svc)
			compareLists(t, svc, base)
			if name == "bolt" {
				if err := svc.CheckNameColumn(ctx, "p1"); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestNameColumnBudget: columns stay within the budget, least recently
// used out, and a project that does not fit is listed by scanning; lists
// equal the whole-project listing throughout.
func TestNameColumnBudget(t *testing.T) {
	st := listBackends()["bolt"](t)
	_, root := newStore(t)
	svc, err := kms.New(kms.Config{Store: st, Master: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		for _, who := range []kms.Identity{admin, other} {
			if _, err := svc.CreateSecret(ctx, who, kms.CreateRequest{Name: fmt.Sprintf("n%03d", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(step string, who kms.Identity, held1, held2 bool) {
		t.Helper()
		for _, q := range []kms.ListQuery{{Name: "n1", Offset: 3, Limit: 5}, {Name: "N0"}} {
			got, gotTotal, err := svc.ListSecrets(ctx, who, q)
			want, wantTotal, wantErr := svc.ListRecords(ctx, who, q)
			if err != nil || wantErr != nil || ids(got) != ids(want) || gotTotal != wantTotal {
				t.Fatalf("%s: %+v: got %d %s, want %d %s (%v, %v)", step, q, gotTotal, ids(got), wantTotal, ids(want), err, wantErr)
			}
		}
		if svc.NameColumnHeld("p1") != held1 || svc.NameColumnHeld("p2") != held2 {
			t.Fatalf("%s: held p1 %v p2 %v, want %v %v", step, svc.NameColumnHeld("p1"), svc.NameColumnHeld("p2"), held1, held2)
		}
	}
	check("p1 first", admin, true, false)
	one := svc.NameColumnsBytes()
	if one <= 0 {
		t.Fatalf("a column of %d bytes", one)
	}
	check("p2 too, within the default budget", other, true, true)
	svc.SetNameColumnBudget(one + one/2) // room for one
	check("p1 again, p2 out", admin, true, false)
	check("p2 again, p1 out", other, false, true)
	if got := svc.NameColumnsBytes(); got > one+one/2 {
		t.Fatalf("%d bytes held, budget %d", got, one+one/2)
	}
	svc.SetNameColumnBudget(one / 2) // room for none
	check("p2, too large alone", other, false, false)
	check("p1, too large", admin, false, false)
}
