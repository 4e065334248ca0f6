package kmip

import (
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

func TestConsumerValueRoundTrip(t *testing.T) {
	for _, c := range []kms.Consumer{
		{Service: "cinder", ResourceType: "volume", ResourceID: "v1"},
		{Service: "a/b", ResourceType: "%2F", ResourceID: "x/%/y"},
	} {
		got, perr := parseConsumer(textItem(consumerValue(c)))
		if perr != nil || got != c {
			t.Fatalf("%+v → %q → %+v %v", c, consumerValue(c), got, perr)
		}
	}
	for _, bad := range []string{"a/b", "a/b/c/d", "a/b/c%41", "a/b/c%", "a/b/%2f"} {
		if _, perr := parseConsumer(textItem(bad)); perr == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, perr := parseConsumer(u32Item(ttlv.TypeInteger, 1)); perr == nil {
		t.Error("an Integer accepted")
	}
}

// TestVendorConsumers: the 2.x Vendor Attribute form, the refusals, the
// deletion policy and its effect, through raw TTLV.
func TestVendorConsumers(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	c.ver = version{2, 0}
	vendor := func(tag ttlv.Tag, name, val string) ttlv.Value {
		return st(tag, st(tagAttribute, v(kmip14.TagVendorIdentification, "x"), v(tagAttributeName, name), v(tagAttributeValue, val)))
	}
	// Set at creation: refused (a consumer is a change of its own).
	c.do(createAES(c.ver, 128, "x-keywarden-consumer", "a/b/c")).failed(0, uint32(kmip14.ResultReasonInvalidField))
	id := uidOf(c.do(createAES(c.ver, 128)).ok(0))
	consumers := func() []kms.Consumer {
		sec, err := e.svc.GetSecret(t.Context(), who("p1"), id, kms.View{Destroyed: true})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Consumers
	}
	add := func(val string) *resp {
		return c.do(byID(kmip14.OperationAddAttribute, id, vendor(kmip20.TagNewAttribute, "keywarden-consumer", val)))
	}
	add("nova/instance/i-1").ok(0)
	add("nova/instance/i-1").ok(0) // idempotent, as over REST
	add("glance/image/im-1").ok(0)
	add("nova/instance").failed(0, uint32(kmip14.ResultReasonInvalidField))
	add("nova//i-3").failed(0, uint32(kmip14.ResultReasonInvalidField))
	if cs := consumers(); len(cs) != 2 || cs[0].ResourceID != "i-1" || cs[1].Service != "glance" || cs[0].Project != "p1" {
		t.Fatalf("consumers %+v", cs)
	}
	// Modify and Set: a consumer is added or deleted.
	c.do(byID(kmip14.OperationModifyAttribute, id, vendor(kmip20.TagNewAttribute, "keywarden-consumer", "a/b/c"))).
		failed(0, uint32(kmip20.ResultReasonMultiValuedAttribute))
	c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), id, vendor(kmip20.TagNewAttribute, "keywarden-consumer", "a/b/c"))).
		failed(0, uint32(kmip20.ResultReasonMultiValuedAttribute))
	// Get Attributes lists them, as Vendor Attributes.
	ga := c.do(byID(kmip14.OperationGetAttributes, id,
		st(tagAttributeRef, v(kmip14.TagVendorIdentification, "x"), v(tagAttributeName, "keywarden-consumer")),
		st(tagAttributeRef, v(kmip14.TagVendorIdentification, "x"), v(tagAttributeName, "keywarden-deletion-policy")))).ok(0)
	var vals []string
	for _, a := range all(ga, tagAttribute, tagAttributes) {
		s, _ := get(a, tagAttributeValue).(string)
		vals = append(vals, s)
	}
	if len(vals) != 3 || vals[0] != "retain" || vals[1] != "nova/instance/i-1" || vals[2] != "glance/image/im-1" {
		t.Fatalf("Get Attributes: %v", vals)
	}
	// Destroy waits for the last consumer.
	c.do(revoke(id, kmip14.RevocationReasonCodeCessationOfOperation)).ok(0)
	c.do(byID(kmip14.OperationDestroy, id)).failed(0, uint32(kmip20.ResultReasonWrongKeyLifecycleState))
	// Delete by value; an absent one is no instance.
	c.do(byID(kmip14.OperationDeleteAttribute, id, vendor(kmip20.TagCurrentAttribute, "keywarden-consumer", "x/y/z"))).
		failed(0, uint32(kmip20.ResultReasonAttributeInstanceNotFound))
	c.do(byID(kmip14.OperationDeleteAttribute, id, vendor(kmip20.TagCurrentAttribute, "keywarden-consumer", "nova/instance/i-1"))).ok(0)
	// The deletion policy: only our names, then on_last_consumer.
	setPolicy := func(val string) *resp {
		return c.do(byID(kmip14.Operation(kmip20.OperationSetAttribute), id, vendor(kmip20.TagNewAttribute, "keywarden-deletion-policy", val)))
	}
	setPolicy("sometimes").failed(0, uint32(kmip14.ResultReasonInvalidField))
	setPolicy("on_last_consumer").ok(0)
	// A caller who may remove a consumer but not delete the key cannot
	// thereby destroy it (secret_consumers:destroy), and nothing changes.
	obs := e.dial("p1", "observer")
	obs.ver = c.ver
	obs.do(byID(kmip14.OperationDeleteAttribute, id, vendor(kmip20.TagCurrentAttribute, "keywarden-consumer", "glance/image/im-1"))).
		failed(0, uint32(kmip14.ResultReasonPermissionDenied))
	if cs := consumers(); len(cs) != 1 {
		t.Fatalf("a refused removal changed the consumers: %+v", cs)
	}
	// The last consumer goes: the key goes with it.
	c.do(byID(kmip14.OperationDeleteAttribute, id, vendor(kmip20.TagCurrentAttribute, "keywarden-consumer", "glance/image/im-1"))).ok(0)
	if _, err := e.svc.GetSecret(t.Context(), who("p1"), id, kms.View{Destroyed: true}); kms.KindOf(err) != kms.KindNotFound {
		t.Fatalf("the key outlived its last consumer: %v", err)
	}
}

// TestVendorConsumers1x: the 1.x custom attribute form, by index.
func TestVendorConsumers1x(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	id := uidOf(c.do(createAES(c.ver, 128)).ok(0))
	// Unused, they are not listed unless asked for (PyKMIP 2.0 refuses
	// any Vendor Attribute in a Get Attributes of all).
	listed := all(c.do(byID(kmip14.OperationGetAttributes, id)).ok(0), tagAttribute)
	for _, a := range listed {
		if n, _ := get(a, tagAttributeName).(string); isVendorAttr(n) {
			t.Fatalf("Get Attributes lists %s", n)
		}
	}
	if len(listed) < 4 {
		t.Fatalf("Get Attributes listed %d attributes", len(listed))
	}
	if p, _ := get(c.do(byID(kmip14.OperationGetAttributes, id, v(tagAttributeName, attrDeletionPolicy))).ok(0),
		tagAttribute, tagAttributeValue).(string); p != "retain" {
		t.Fatalf("deletion policy asked for: %q", p)
	}
	r := c.do(byID(kmip14.OperationAddAttribute, id, attr1("x-keywarden-consumer", "cinder/volume/v1")),
		byID(kmip14.OperationAddAttribute, id, attr1("x-keywarden-consumer", "cinder/volume/v2")))
	if get(r.ok(1), tagAttribute, tagAttributeIndex) != int32(1) {
		t.Fatalf("second consumer's index: %v", r.ok(1))
	}
	c.do(byID(kmip14.OperationDeleteAttribute, id, v(tagAttributeName, "x-keywarden-consumer"), v(tagAttributeIndex, int32(5)))).
		failed(0, uint32(kmip14.ResultReasonItemNotFound))
	c.do(byID(kmip14.OperationDeleteAttribute, id, v(tagAttributeName, "x-keywarden-consumer"), v(tagAttributeIndex, int32(0)))).ok(0)
	sec, err := e.svc.GetSecret(t.Context(), who("p1"), id, kms.View{})
	if err != nil || len(sec.Consumers) != 1 || sec.Consumers[0].ResourceID != "v2" {
		t.Fatalf("%+v %v", sec, err)
	}
	// Retain (the default): the last consumer's removal keeps the key.
	c.do(byID(kmip14.OperationDeleteAttribute, id, v(tagAttributeName, "x-keywarden-consumer"))).ok(0)
	c.do(byID(kmip14.OperationGet, id)).ok(0)
}
