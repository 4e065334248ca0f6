package kms

import (
	"reflect"
	"testing"
	"time"
)

// A summary gives back every field a listing reads, and garbage is an
// error, never a panic.
func TestSummaryRoundTrip(t *testing.T) {
	exp := time.Date(2999, 1, 1, 0, 0, 0, 5, time.UTC)
	act := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	for _, sec := range []*Secret{
		{ID: "id1", Project: "p", Created: now, Updated: now, State: Active, Type: Opaque},
		{ID: "id2", Project: "p", Creator: "bob", CreatorSource: "jwt:x", Name: "vol-ü", Algorithm: "aes", Mode: "xts",
			BitLength: 256, Type: Symmetric, State: PreActive, Created: now, Updated: now.Add(time.Hour),
			Expiration: &exp, ActivationDate: &act,
			ACL: &ACL{Users: []string{"olga", "ivan"}, Source: "keystone:u", ProjectAccess: false}},
	} {
		v := encodeSummary(sec)
		got, err := decodeSummary(sec.Project, listSuffix(sec.Created, sec.ID), v)
		if err != nil {
			t.Fatal(err)
		}
		want := &Secret{ID: sec.ID, Project: sec.Project, Creator: sec.Creator, CreatorSource: sec.CreatorSource,
			Name: sec.Name, Algorithm: sec.Algorithm, Mode: sec.Mode, BitLength: sec.BitLength, Type: sec.Type,
			State: sec.State, Created: sec.Created, Updated: sec.Updated, Expiration: sec.Expiration,
			ActivationDate: sec.ActivationDate}
		if sec.ACL != nil {
			want.ACL = &ACL{Users: sec.ACL.Users, Source: sec.ACL.Source, ProjectAccess: sec.ACL.ProjectAccess}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
		for i := range v {
			if _, err := decodeSummary(sec.Project, listSuffix(sec.Created, sec.ID), v[:i]); err == nil {
				t.Fatalf("a summary cut at %d of %d decodes", i, len(v))
			}
		}
	}
	if _, err := decodeSummary("p", "zz/id", []byte{summaryVersion}); err == nil {
		t.Fatal("a key without a creation time decodes")
	}
}

// rawMatch, which rejects entries on their stored bytes, agrees with
// match on the decoded summary (due activation applied) for every kind of
// filter, and allocates nothing for an ASCII entry it rejects.
func TestRawMatch(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	secs := []*Secret{
		{ID: "a", Name: "Vol-ÄB", Algorithm: "AES", Mode: "xts", BitLength: 256, Type: Symmetric, State: Active, Created: past, Updated: now},
		{ID: "b", Name: "vol-001", Algorithm: "aes", Mode: "CBC", BitLength: 128, Type: Opaque, State: PreActive, ActivationDate: &past, Created: now, Updated: future},
		{ID: "c", Name: "", Algorithm: "", State: PreActive, ActivationDate: &future, Expiration: &future, Created: future, Updated: past},
		{ID: "d", Name: "k\x00ey", Algorithm: "rsa", State: Deactivated, Expiration: &past, Created: past, Updated: past,
			ACL: &ACL{Users: []string{"u"}}},
	}
	queries := []ListQuery{
		{}, {Name: "VOL"}, {Name: "äb"}, {Name: "ÄB"}, {Name: "l-0"}, {Name: "k\x00e"}, {ExactName: "vol-001"}, {ExactName: "vol"},
		{Algorithm: "ae"}, {Algorithm: "AeS"}, {Mode: "c"}, {Mode: "TS"}, {BitLength: 128}, {BitLength: 7}, {Type: Opaque},
		{State: Active}, {State: PreActive}, {State: Deactivated},
		{Created: []TimeFilter{{Op: "gt", T: past}}}, {Created: []TimeFilter{{Op: "lte", T: past}}},
		{Updated: []TimeFilter{{Op: "gte", T: now}, {Op: "lt", T: future}}}, {Expiration: []TimeFilter{{Op: "gt", T: now}}},
		{Expiration: []TimeFilter{{Op: "lt", T: future}}}, {Name: "vol", Algorithm: "aes", State: Active},
	}
	for _, sec := range secs {
		sec.Project = "p"
		suffix, v := listSuffix(sec.Created, sec.ID), encodeSummary(sec)
		dec, err := decodeSummary("p", suffix, v)
		if err != nil {
			t.Fatal(err)
		}
		dueActivationOf(dec, now)
		for _, q := range queries {
			if got, want := q.rawMatch([]byte(suffix), v, now), q.match(dec); got != want {
				t.Errorf("%s %+v: rawMatch %v, match %v", sec.ID, q, got, want)
			}
		}
	}
	v, suffix := encodeSummary(secs[1]), []byte(listSuffix(secs[1].Created, "b"))
	// Every field read, rejected by the last.
	q := ListQuery{Name: "VOL", Mode: "cbc", Type: Opaque, State: Active, Updated: []TimeFilter{{Op: "gte", T: now}}, Created: []TimeFilter{{Op: "gt", T: now}}}
	if q.rawMatch(suffix, v, now) {
		t.Fatal("created gt now matches an entry created now")
	}
	if n := testing.AllocsPerRun(100, func() { q.rawMatch(suffix, v, now) }); n != 0 {
		t.Fatalf("rawMatch allocates %v times", n)
	}
}
