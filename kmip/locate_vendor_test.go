package kmip

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// Locate on x-keywarden-consumer (Barbican's rule: service, resource type
// and resource id all match) and x-keywarden-deletion-policy (the
// effective one: a key with none set is retain), in 1.4 (custom
// Attribute) and 2.0 (Vendor Attribute) form, within the caller's project:
// another project's key with the same consumer is not found.
func TestLocateVendorAttributes(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 4}, {2, 0}} {
		proj := fmt.Sprintf("lv%d%d", ver.major, ver.minor)
		c := e.dial(proj)
		c.ver = ver
		addConsumer := func(id, val string) {
			c.do(byID(kmip14.OperationAddAttribute, id, vendorAttr(ver, "keywarden-consumer", val))).ok(0)
		}
		a := uidOf(c.do(createAES(c.ver, 128)).ok(0))
		b := uidOf(c.do(createAES(c.ver, 128)).ok(0))
		plain := uidOf(c.do(createAES(c.ver, 128)).ok(0))
		addConsumer(a, "nova/instance/i-1")
		addConsumer(b, "nova/instance/i-2")
		addConsumer(b, "glance/image/i-1")
		c.do(byID(kmip14.OperationAddAttribute, b, vendorAttr(ver, "keywarden-deletion-policy", "on_last_consumer"))).ok(0)
		other := e.dial(proj + "-other")
		other.ver = ver
		o := uidOf(other.do(createAES(other.ver, 128)).ok(0))
		other.do(byID(kmip14.OperationAddAttribute, o, vendorAttr(ver, "keywarden-consumer", "nova/instance/i-1"))).ok(0)

		locate := func(kv ...string) []string {
			var as []ttlv.Value
			for i := 0; i < len(kv); i += 2 {
				as = append(as, locateVendor(ver, kv[i], kv[i+1]))
			}
			if ver.v2() {
				as = []ttlv.Value{st(tagAttributes, as...)}
			}
			var ids []string
			for _, x := range all(c.do(op{op: kmip14.OperationLocate, payload: as}).ok(0), tagUniqueIdentifier) {
				ids = append(ids, x.Value.(string))
			}
			slices.Sort(ids)
			return ids
		}
		sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
		for _, tc := range []struct {
			kv   []string
			want []string
		}{
			{[]string{"keywarden-consumer", "nova/instance/i-1"}, []string{a}},
			{[]string{"keywarden-consumer", "glance/image/i-1"}, []string{b}},
			{[]string{"keywarden-consumer", "nova/image/i-1"}, nil},
			{[]string{"keywarden-deletion-policy", "on_last_consumer"}, []string{b}},
			{[]string{"keywarden-deletion-policy", "retain"}, sorted(a, plain)},
			{[]string{"keywarden-consumer", "nova/instance/i-2", "keywarden-deletion-policy", "retain"}, nil},
		} {
			if got := locate(tc.kv...); !slices.Equal(got, tc.want) {
				t.Fatalf("%v: Locate %v found %v, want %v", ver, tc.kv, got, tc.want)
			}
		}
		var bad []ttlv.Value
		bad = append(bad, locateVendor(ver, "keywarden-consumer", "nova/instance"))
		if ver.v2() {
			bad = []ttlv.Value{st(tagAttributes, bad...)}
		}
		c.do(op{op: kmip14.OperationLocate, payload: bad}).failed(0, uint32(kmip14.ResultReasonInvalidField))
		bad = []ttlv.Value{locateVendor(ver, "keywarden-deletion-policy", "sometimes")}
		if ver.v2() {
			bad = []ttlv.Value{st(tagAttributes, bad...)}
		}
		c.do(op{op: kmip14.OperationLocate, payload: bad}).failed(0, uint32(kmip14.ResultReasonInvalidField))
	}
}

// vendorAttr is an Add Attribute payload member for a vendor attribute.
func vendorAttr(ver version, name, val string) ttlv.Value {
	if ver.v2() {
		return st(kmip20.TagNewAttribute, st(tagAttribute, v(kmip14.TagVendorIdentification, "x"), v(tagAttributeName, name), v(tagAttributeValue, val)))
	}
	return attr1("x-"+name, val)
}

// locateVendor is one Locate attribute naming a vendor attribute.
func locateVendor(ver version, name, val string) ttlv.Value {
	if ver.v2() {
		return st(tagAttribute, v(kmip14.TagVendorIdentification, "x"), v(tagAttributeName, name), v(tagAttributeValue, val))
	}
	return attr1("x-"+name, val)
}
