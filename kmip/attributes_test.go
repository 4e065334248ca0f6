package kmip

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

func TestAttributeOperations1x(t *testing.T) {
	e := newEnv(t)
	c := e.dial("attrs")
	c.ver = version{1, 4}
	id := uidOf(c.do(createAES(c.ver, 256, "Object Group", "g1", "x-disk", "vol-1", "Cryptographic Usage Mask", 12)).ok(0))
	got := attrMap(t, c.ver, c.do(byID(kmip14.OperationGetAttributes, id)).ok(0))
	if got["Object Group"] != "g1" || got["x-disk"] != "vol-1" || got["Cryptographic Usage Mask"] != int32(12) {
		t.Fatalf("attributes: %v", got)
	}
	// Add: a second group instance gets index 1; a second usage mask is refused.
	p := c.do(byID(kmip14.OperationAddAttribute, id, attr1("Object Group", "g2"))).ok(0)
	if get(p, tagAttribute, tagAttributeIndex) != int32(1) {
		t.Fatalf("add answered %+v", p)
	}
	c.do(byID(kmip14.OperationAddAttribute, id, attr1("Cryptographic Usage Mask", 4))).failed(0, uint32(kmip14.ResultReasonIllegalOperation))
	c.do(byID(kmip14.OperationAddAttribute, id, attr1("Name", nameVal("named")))).ok(0)
	c.do(byID(kmip14.OperationAddAttribute, id, attr1("Name", nameVal("again")))).failed(0, uint32(kmip14.ResultReasonIllegalOperation))
	// Read-only and unknown attributes.
	c.do(byID(kmip14.OperationAddAttribute, id, attr1("State", kmip14.StateActive))).failed(0, uint32(kmip14.ResultReasonPermissionDenied))
	c.do(byID(kmip14.OperationModifyAttribute, id, attr1("Cryptographic Length", 128))).failed(0, uint32(kmip14.ResultReasonPermissionDenied))
	c.do(byID(kmip14.OperationAddAttribute, id, attr1("Batch Count", 1))).failed(0, uint32(kmip14.ResultReasonInvalidField))
	c.do(byID(kmip14.OperationAddAttribute, id, attr1("Object Group", 5))).failed(0, uint32(kmip14.ResultReasonInvalidField))
	// Modify by index; modify of an absent index.
	mod := st(tagAttribute, v(tagAttributeName, "Object Group"), v(tagAttributeIndex, 1), v(tagAttributeValue, "g2b"))
	c.do(byID(kmip14.OperationModifyAttribute, id, mod)).ok(0)
	mod = st(tagAttribute, v(tagAttributeName, "Object Group"), v(tagAttributeIndex, 7), v(tagAttributeValue, "zz"))
	c.do(byID(kmip14.OperationModifyAttribute, id, mod)).failed(0, uint32(kmip14.ResultReasonItemNotFound))
	c.do(byID(kmip14.OperationModifyAttribute, id, attr1("Name", nameVal("renamed")))).ok(0)
	// Delete by name and index.
	p = c.do(byID(kmip14.OperationDeleteAttribute, id, v(tagAttributeName, "Object Group"))).ok(0)
	if get(p, tagAttribute, tagAttributeValue) != "g1" {
		t.Fatalf("delete answered %+v", p)
	}
	c.do(byID(kmip14.OperationDeleteAttribute, id, v(tagAttributeName, "x-disk"))).ok(0)
	c.do(byID(kmip14.OperationDeleteAttribute, id, v(tagAttributeName, "x-disk"))).failed(0, uint32(kmip14.ResultReasonItemNotFound))
	got = attrMap(t, c.ver, c.do(byID(kmip14.OperationGetAttributes, id)).ok(0))
	if got["Object Group#1"] != "g2b" || got["Object Group"] != nil || got["x-disk"] != nil ||
		get(ttlv.Value{Value: ttlv.Values{{Tag: 1, Value: got["Name"]}}}, 1, kmip14.TagNameValue) != "renamed" {
		t.Fatalf("after changes: %v", got)
	}
	// Get Attribute List names what Get Attributes returns, once each.
	list := c.do(byID(kmip14.OperationGetAttributeList, id)).ok(0)
	var names []string
	for _, n := range all(list, tagAttributeName) {
		names = append(names, n.Value.(string))
	}
	for _, want := range []string{"Unique Identifier", "Name", "Object Group", "State", "Cryptographic Usage Mask"} {
		if !slices.Contains(names, want) {
			t.Fatalf("attribute list %v lacks %s", names, want)
		}
	}
	if slices.Contains(names, "x-disk") {
		t.Fatal("deleted attribute listed")
	}
	// Operation Policy Name is a 1.x attribute; Key Format Type a 2.x one.
	c.do(byID(kmip14.OperationAddAttribute, id, attr1("Operation Policy Name", "default"))).ok(0)
	c.ver = version{2, 0}
	got = attrMap(t, c.ver, c.do(byID(kmip14.OperationGetAttributes, id)).ok(0))
	if _, ok := got["Operation Policy Name"]; ok {
		t.Fatal("a 2.0 response lists a 1.x-only attribute")
	}
}

func TestAttributeOperations2x(t *testing.T) {
	e := newEnv(t)
	c := e.dial("attrs2")
	c.ver = version{2, 0}
	id := uidOf(c.do(createAES(c.ver, 128, "Object Group", "a", "x-color", "red")).ok(0))
	newAttr := func(tag ttlv.Tag, val any) ttlv.Value { return st(kmip20.TagNewAttribute, wrapTag(tag, val)) }
	curAttr := func(tag ttlv.Tag, val any) ttlv.Value { return st(kmip20.TagCurrentAttribute, wrapTag(tag, val)) }
	vendor := func(name, val string) ttlv.Value {
		return st(tagAttribute, v(kmip14.TagVendorIdentification, "x"), v(tagAttributeName, name), v(tagAttributeValue, val))
	}
	c.do(byID(kmip14.OperationAddAttribute, id, newAttr(kmip14.TagObjectGroup, "b"))).ok(0)
	c.do(byID(kmip14.OperationAddAttribute, id, st(kmip20.TagNewAttribute, vendor("size", "10G")))).ok(0)
	// Modify needs the Current Attribute when several instances exist.
	c.do(byID(kmip14.OperationModifyAttribute, id, newAttr(kmip14.TagObjectGroup, "c"))).failed(0, uint32(kmip14.ResultReasonInvalidField))
	c.do(byID(kmip14.OperationModifyAttribute, id, curAttr(kmip14.TagObjectGroup, "b"), newAttr(kmip14.TagObjectGroup, "c"))).ok(0)
	c.do(byID(kmip14.OperationModifyAttribute, id, curAttr(kmip14.TagObjectGroup, "zz"), newAttr(kmip14.TagObjectGroup, "d"))).
		failed(0, uint32(kmip20.ResultReasonAttributeInstanceNotFound))
	// Set Attribute: single-valued only.
	c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), id, newAttr(kmip14.TagCryptographicUsageMask, 4))).ok(0)
	c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), id, newAttr(kmip14.TagObjectGroup, "e"))).
		failed(0, uint32(kmip20.ResultReasonMultiValuedAttribute))
	c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), id, newAttr(kmip14.TagState, kmip14.StateActive))).
		failed(0, uint32(kmip20.ResultReasonReadOnlyAttribute))
	c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), id, newAttr(kmip14.TagName, nameVal("set-name")))).ok(0)
	// Delete by value and by reference.
	c.do(byID(kmip14.OperationDeleteAttribute, id, curAttr(kmip14.TagObjectGroup, "a"))).ok(0)
	c.do(byID(kmip14.OperationDeleteAttribute, id, st(tagAttributeRef, v(kmip14.TagVendorIdentification, "x"), v(tagAttributeName, "color")))).ok(0)
	ga := c.do(byID(kmip14.OperationGetAttributes, id,
		v(tagAttributeRef, ttlv.EnumValue(kmip14.TagObjectGroup)),
		v(tagAttributeRef, ttlv.EnumValue(kmip14.TagCryptographicUsageMask)),
		st(tagAttributeRef, v(kmip14.TagVendorIdentification, "x"), v(tagAttributeName, "size")),
		v(tagAttributeRef, ttlv.EnumValue(kmip14.TagName)))).ok(0)
	got := attrMap(t, c.ver, ga)
	if got["Object Group"] != "c" || got["Cryptographic Usage Mask"] != int32(4) || got["x-size"] != "10G" || len(got) != 4 {
		t.Fatalf("2.x attributes: %v", got)
	}
	// Get Attribute List answers Attribute References: enumerations, and a
	// structure for the vendor attribute.
	list := c.do(byID(kmip14.OperationGetAttributeList, id)).ok(0)
	var tags []ttlv.EnumValue
	var vendors int
	for _, r := range all(list, tagAttributeRef) {
		switch x := r.Value.(type) {
		case ttlv.EnumValue:
			tags = append(tags, x)
		case ttlv.Values:
			vendors++
		}
	}
	if !slices.Contains(tags, ttlv.EnumValue(kmip14.TagState)) || vendors != 1 {
		t.Fatalf("attribute list: %v, %d vendor", tags, vendors)
	}
	// A future Activation Date schedules a pre-active object's activation;
	// one that has come activates it.
	c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), id, newAttr(kmip14.TagActivationDate, time.Now().Add(time.Hour)))).ok(0)
	if sec, _ := e.svc.GetSecret(context.Background(), who("attrs2"), id, kms.View{Destroyed: true}); sec.State != kms.PreActive || sec.ActivationDate == nil {
		t.Fatalf("after a future Activation Date: %s %v", sec.State, sec.ActivationDate)
	}
	c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), id, newAttr(kmip14.TagActivationDate, time.Now().Add(-time.Minute)))).ok(0)
	if sec, _ := e.svc.GetSecret(context.Background(), who("attrs2"), id, kms.View{Destroyed: true}); sec.State != kms.Active {
		t.Fatalf("state %s", sec.State)
	}
	// Past pre-active, kms refuses the date: the adapter only words it.
	c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), id, newAttr(kmip14.TagActivationDate, time.Now()))).
		failed(0, uint32(kmip20.ResultReasonReadOnlyAttribute))
}

func TestLocate(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 2}, {1, 4}, {2, 0}} {
		t.Run(fmt.Sprintf("%d.%d", ver.major, ver.minor), func(t *testing.T) {
			project := fmt.Sprintf("loc%d%d", ver.major, ver.minor)
			c := e.dial(project)
			c.ver = ver
			var ids []string
			for i := range 5 {
				bits := 128
				if i%2 == 0 {
					bits = 256
				}
				ids = append(ids, uidOf(c.do(createAES(ver, bits, "Name", nameVal(fmt.Sprintf("key-%d", i)),
					"Object Group", fmt.Sprintf("grp-%d", i%2), "x-vol", fmt.Sprintf("v%d", i))).ok(0)))
			}
			pw := uidOf(c.do(registerSecret(ver, []byte("pw"), "Name", nameVal("secret"))).ok(0))
			c.do(byID(kmip14.OperationActivate, ids[4])).ok(0)
			// Another project's objects are never located.
			o := e.dial("other-" + project)
			o.ver = ver
			o.do(createAES(ver, 256, "Name", nameVal("key-0"))).ok(0)

			locate := func(extra []ttlv.Value, kv ...any) (int32, []string) {
				t.Helper()
				p := append([]ttlv.Value{}, extra...)
				if len(kv) > 0 {
					if ver.v2() {
						p = append(p, attrs(ver, kv...))
					} else {
						for i := 0; i < len(kv); i += 2 {
							p = append(p, attr1(kv[i].(string), kv[i+1]))
						}
					}
				}
				r := c.do(op{op: kmip14.OperationLocate, payload: p}).ok(0)
				var got []string
				for _, u := range all(r, tagUniqueIdentifier) {
					got = append(got, u.Value.(string))
				}
				n, _ := get(r, kmip14.TagLocatedItems).(int32)
				if ver.atLeast(1, 3) != (get(r, kmip14.TagLocatedItems) != nil) {
					t.Fatalf("Located Items presence at %v", ver)
				}
				return n, got
			}
			want := func(got []string, idx ...int) {
				t.Helper()
				var w []string
				for _, i := range idx {
					w = append(w, ids[i])
				}
				if !slices.Equal(got, w) {
					t.Fatalf("located %v, want %v", got, w)
				}
			}
			_, got := locate(nil, "Name", nameVal("key-3"))
			want(got, 3)
			_, got = locate(nil, "Object Type", kmip14.ObjectTypeSecretData)
			if !slices.Equal(got, []string{pw}) {
				t.Fatalf("by type: %v", got)
			}
			_, got = locate(nil, "Cryptographic Length", 128)
			want(got, 1, 3)
			_, got = locate(nil, "Cryptographic Algorithm", kmip14.CryptographicAlgorithmAES, "Object Group", "grp-0")
			want(got, 0, 2, 4)
			_, got = locate(nil, "State", kmip14.StateActive)
			want(got, 4)
			_, got = locate(nil, "x-vol", "v2")
			want(got, 2)
			_, got = locate(nil, "Cryptographic Algorithm", kmip14.CryptographicAlgorithmDES3)
			want(got)
			if ver.atLeast(1, 3) { // Offset Items is a 1.3 member
				n, got := locate([]ttlv.Value{v(kmip14.TagMaximumItems, 2), v(kmip14.TagOffsetItems, 1)}, "Object Type", kmip14.ObjectTypeSymmetricKey)
				want(got, 1, 2)
				if n != 5 {
					t.Fatalf("Located Items %d", n)
				}
			} else {
				_, got := locate([]ttlv.Value{v(kmip14.TagMaximumItems, 2)}, "Object Type", kmip14.ObjectTypeSymmetricKey)
				want(got, 0, 1)
			}
			// Dates: a range around now finds everything made here.
			_, got = locate(nil, "Initial Date", time.Now().Add(-time.Hour), "Initial Date", time.Now().Add(time.Hour),
				"Object Type", kmip14.ObjectTypeSymmetricKey)
			want(got, 0, 1, 2, 3, 4)
			// Destroyed objects: only when asked for.
			c.do(byID(kmip14.OperationDestroy, ids[0])).ok(0)
			_, got = locate(nil, "Object Group", "grp-0")
			want(got, 2, 4)
			_, got = locate(nil, "State", kmip14.StateDestroyed)
			want(got, 0)
			// The ID Placeholder takes the first located object.
			r := c.do(op{op: kmip14.OperationLocate, payload: []ttlv.Value{attr1OrAttrs(ver, "Name", nameVal("key-1"))}},
				byID(kmip14.OperationGetAttributes, ""))
			if uidOf(r.ok(1)) != ids[1] {
				t.Fatal("Locate did not set the ID Placeholder")
			}
		})
	}
}

func attr1OrAttrs(ver version, name string, val any) ttlv.Value {
	if ver.v2() {
		return attrs(ver, name, val)
	}
	return attr1(name, val)
}

// TestOtherProjects: an object of another project is never returned,
// located or changed, whatever the operation.
func TestOtherProjects(t *testing.T) {
	e := newEnv(t)
	a := e.dial("proj-a")
	id := uidOf(a.do(createAES(a.ver, 256, "Name", nameVal("secret-of-a"))).ok(0))
	b := e.dial("proj-b")
	denied := uint32(kmip14.ResultReasonPermissionDenied)
	for _, o := range []op{
		byID(kmip14.OperationGet, id),
		byID(kmip14.OperationGetAttributes, id),
		byID(kmip14.OperationGetAttributeList, id),
		byID(kmip14.OperationActivate, id),
		revoke(id, kmip14.RevocationReasonCodeKeyCompromise),
		byID(kmip14.OperationDestroy, id),
		byID(kmip14.OperationCheck, id),
		byID(kmip14.OperationAddAttribute, id, attr1("Object Group", "stolen")),
		byID(kmip14.OperationModifyAttribute, id, attr1("Name", nameVal("stolen"))),
		byID(kmip14.OperationDeleteAttribute, id, v(tagAttributeName, "Name")),
	} {
		r := b.do(o)
		r.failed(0, denied)
		if bytes := r.raw; len(bytes) > 400 {
			t.Fatalf("%v: a large answer to a denied request", o.op)
		}
	}
	r := b.do(op{op: kmip14.OperationLocate, payload: []ttlv.Value{attr1("Name", nameVal("secret-of-a"))}})
	if len(all(r.ok(0), tagUniqueIdentifier)) != 0 {
		t.Fatal("located another project's object")
	}
	sec, err := e.svc.GetSecret(context.Background(), who("proj-a"), id, kms.View{Destroyed: true})
	if err != nil || sec.State != kms.PreActive || sec.Name != "secret-of-a" || len(sec.Attributes) != 0 {
		t.Fatalf("the object changed: %+v %v", sec, err)
	}
	// Roles still apply within a project: an observer cannot create.
	obs := e.dial("proj-a", "observer")
	obs.do(createAES(obs.ver, 256)).failed(0, denied)
}

// Two connections each adding 50 instances of one attribute to one object
// at once keep all 100: the index is chosen inside the record's write
// (issue 10: 54–60 of 100 survived when the adapter chose it on a
// snapshot).
func TestConcurrentAddAttributeKeepsAll(t *testing.T) {
	e := newEnv(t)
	c0 := e.dial("race")
	id := uidOf(c0.do(createAES(c0.ver, 256)).ok(0))
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for conn := range 2 {
		c := e.dial("race")
		wg.Go(func() {
			for i := range 50 {
				r := c.do(byID(kmip14.OperationAddAttribute, id, attr1("x-tag", fmt.Sprintf("c%d-%d", conn, i))))
				if s := get(r.item(0), kmip14.TagResultStatus); s != ttlv.EnumValue(kmip14.ResultStatusSuccess) {
					errs <- fmt.Sprint(get(r.item(0), kmip14.TagResultMessage))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Errorf("an Add Attribute failed: %s", msg)
	}
	sec, err := e.svc.GetSecret(context.Background(), who("race"), id, kms.View{Destroyed: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, in := range sec.Instances("x-tag") {
		seen[in.Value] = true
	}
	if len(seen) != 100 {
		t.Fatalf("%d distinct x-tag values kept, want 100", len(seen))
	}
}
