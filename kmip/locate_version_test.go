package kmip

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"
)

// TestLocateVersionShapes: each version's Locate response has exactly the
// members that version defines, and a request member the version does not
// define is an Invalid Field.
func TestLocateVersionShapes(t *testing.T) {
	e := newEnv(t)
	for _, ver := range served {
		t.Run(fmt.Sprintf("%d.%d", ver.major, ver.minor), func(t *testing.T) {
			c := e.dial(fmt.Sprintf("shape%d%d", ver.major, ver.minor))
			c.ver = ver
			var ids []string
			for range 3 {
				ids = append(ids, uidOf(c.do(createAES(ver, 128, "Object Group", "g")).ok(0)))
			}
			group := attr1OrAttrs(ver, "Object Group", "g")
			r := c.do(op{op: kmip14.OperationLocate, payload: []ttlv.Value{v(kmip14.TagMaximumItems, 2), group}}).ok(0)
			var tags []ttlv.Tag
			var got []string
			for _, m := range r.Value.(ttlv.Values) {
				tags = append(tags, m.Tag)
				if m.Tag == tagUniqueIdentifier {
					got = append(got, m.Value.(string))
				}
			}
			want := []ttlv.Tag{tagUniqueIdentifier, tagUniqueIdentifier}
			if ver.atLeast(1, 3) {
				want = append([]ttlv.Tag{kmip14.TagLocatedItems}, want...)
				if n := get(r, kmip14.TagLocatedItems); n != int32(3) {
					t.Fatalf("Located Items %v, want 3", n)
				}
			}
			if !slices.Equal(tags, want) || !slices.Equal(got, ids[:2]) {
				t.Fatalf("response members %v (%v), want %v (%v)", tags, got, want, ids[:2])
			}

			invalid := uint32(kmip14.ResultReasonInvalidField)
			locate := func(p ...ttlv.Value) *resp { return c.do(op{op: kmip14.OperationLocate, payload: p}) }
			if !ver.atLeast(1, 3) {
				locate(v(kmip14.TagOffsetItems, 1), group).failed(0, invalid)
			} else {
				r := locate(v(kmip14.TagOffsetItems, 2), group).ok(0)
				if u := all(r, tagUniqueIdentifier); len(u) != 1 || u[0].Value != ids[2] {
					t.Fatalf("Offset Items 2: %v", u)
				}
			}
			member := v(kmip14.TagObjectGroupMember, kmip14.ObjectGroupMemberGroupMemberDefault)
			if !ver.atLeast(1, 1) {
				locate(member, group).failed(0, invalid)
			} else {
				// The default member is the newest.
				r := locate(member, group).ok(0)
				if u := all(r, tagUniqueIdentifier); len(u) != 1 || u[0].Value != ids[2] {
					t.Fatalf("Group Member Default: %v", u)
				}
				locate(member).failed(0, invalid) // no group named
				// Group Member Fresh: the members never served, oldest first.
				fresh := func() []string {
					var ids []string
					for _, u := range all(locate(v(kmip14.TagObjectGroupMember, kmip14.ObjectGroupMemberGroupMemberFresh), group).ok(0), tagUniqueIdentifier) {
						ids = append(ids, u.Value.(string))
					}
					return ids
				}
				if got := fresh(); !slices.Equal(got, ids) {
					t.Fatalf("Group Member Fresh before any Get: %v, want %v", got, ids)
				}
				c.do(byID(kmip14.OperationGet, ids[1])).ok(0)
				if got := fresh(); !slices.Equal(got, []string{ids[0], ids[2]}) {
					t.Fatalf("Group Member Fresh after a Get of %s: %v", ids[1], got)
				}
			}
			// Destroyed Storage is a 2.0 bit of the mask.
			c.do(byID(kmip14.OperationDestroy, ids[0])).ok(0)
			if ver.v2() {
				r := locate(v(kmip14.TagStorageStatusMask, storageDestroyed), group).ok(0)
				if u := all(r, tagUniqueIdentifier); len(u) != 1 || u[0].Value != ids[0] {
					t.Fatalf("Destroyed Storage: %v", u)
				}
			} else {
				locate(v(kmip14.TagStorageStatusMask, storageDestroyed), group).failed(0, invalid)
			}
			r = locate(v(kmip14.TagStorageStatusMask, storageOnline), group).ok(0)
			if u := all(r, tagUniqueIdentifier); len(u) != 2 {
				t.Fatalf("On-line: %v", u)
			}
			// The attribute container is the version's.
			if ver.v2() {
				locate(attr1("Object Group", "g")).failed(0, invalid)
			} else {
				locate(attrs(version{2, 0}, "Object Group", "g")).failed(0, invalid)
			}
			locate(v(kmip14.TagCertificateLength, 1)).failed(0, invalid)
		})
	}
}
