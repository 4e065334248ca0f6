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
