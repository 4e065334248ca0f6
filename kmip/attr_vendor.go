package kmip

import (
	"strings"

	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/kms"
)

// The disk lifecycle over KMIP: a secret's consumers and deletion policy
// as custom attributes (2.x: Vendor Identification "x"). They are not
// stored as attributes: each change is the kms operation REST uses
// (AddConsumer, RemoveConsumer, the os_encrypt_key_deletion_policy
// metadata), so the rules, the policy rows and the audit are the same
// over both protocols.
const (
	// attrConsumer is multi-valued; a value is a Text String
	// "service/resource_type/resource_id", each field with "%" written
	// "%25" and "/" written "%2F", so values and consumers map 1:1.
	attrConsumer = "x-keywarden-consumer"
	// attrDeletionPolicy is a Text String, retain or on_last_consumer.
	attrDeletionPolicy = "x-keywarden-deletion-policy"
)

func isVendorAttr(name string) bool { return name == attrConsumer || name == attrDeletionPolicy }

var consumerEscaper = strings.NewReplacer("%", "%25", "/", "%2F")

// consumerValue is the attribute value naming c.
func consumerValue(c kms.Consumer) string {
	return consumerEscaper.Replace(c.Service) + "/" + consumerEscaper.Replace(c.ResourceType) + "/" + consumerEscaper.Replace(c.ResourceID)
}

// parseConsumer reads a consumer value; any "%" but %25 and %2F is refused,
// so one consumer has one spelling.
func parseConsumer(v item) (kms.Consumer, *opError) {
	s, perr := v.text()
	if perr != nil {
		return kms.Consumer{}, perr
	}
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return kms.Consumer{}, invalidField("%s is service/resource_type/resource_id", attrConsumer)
	}
	for i, f := range parts {
		var b strings.Builder
		for j := 0; j < len(f); j++ {
			if f[j] != '%' {
				b.WriteByte(f[j])
				continue
			}
			switch {
			case strings.HasPrefix(f[j:], "%25"):
				b.WriteByte('%')
			case strings.HasPrefix(f[j:], "%2F"):
				b.WriteByte('/')
			default:
				return kms.Consumer{}, invalidField("in %s, %% is only written %%25 or %%2F", attrConsumer)
			}
			j += 2
		}
		parts[i] = b.String()
	}
	return kms.Consumer{Service: parts[0], ResourceType: parts[1], ResourceID: parts[2]}, nil
}

func textItem(s string) item { return item{typ: ttlv.TypeTextString, val: []byte(s)} }

// vendorAttrs are sec's consumers and deletion policy, as Get Attributes
// lists them. The default policy (retain) is listed only when asked for
// (all: the request names no attribute): a client that never used these
// attributes then sees none (PyKMIP 2.0 fails on any Vendor Attribute).
func vendorAttrs(sec *kms.Secret, all bool) []outAttr {
	var out []outAttr
	if p := sec.EffectivePolicy(); !all || p != kms.Retain {
		out = append(out, outAttr{name: attrDeletionPolicy, val: textItem(string(p))})
	}
	for i, c := range sec.Consumers {
		out = append(out, outAttr{name: attrConsumer, index: int32(i), val: textItem(consumerValue(c))})
	}
	return out
}

// vendorChange runs an attribute operation on a vendor attribute: Add and
// Delete of a consumer, Add/Set/Modify/Delete of the deletion policy.
// byValue says a Delete names its instance by value (else by index).
func (c *opCtx) vendorChange(p item, kind kms.AttrOpKind, a attr, byValue bool) *opError {
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	if a.name == attrDeletionPolicy {
		return c.policyChange(id, kind, a)
	}
	switch kind {
	case kms.AttrAdd:
		cons, perr := parseConsumer(a.val)
		if perr != nil {
			return perr
		}
		sec, err := c.svc.AddConsumer(c.ctx, c.who, id, cons)
		if err != nil {
			return fromKMS(err)
		}
		return c.answerAttr(sec.ID, outAttr{name: attrConsumer, index: consumerIndex(sec, cons), val: textItem(consumerValue(cons))})
	case kms.AttrDelete:
		sec, err := c.svc.GetSecret(c.ctx, c.who, id, kms.View{})
		if err != nil {
			return fromKMS(err)
		}
		var cons kms.Consumer
		if byValue {
			if cons, perr = parseConsumer(a.val); perr != nil {
				return perr
			}
		}
		i := consumerIndex(sec, cons)
		if !byValue {
			i = a.index
		}
		if i < 0 || int(i) >= len(sec.Consumers) {
			return errf(kmip20.ResultReasonAttributeInstanceNotFound, "the object has no such %s", attrConsumer)
		}
		cons = sec.Consumers[i]
		// Removing the last consumer of an on_last_consumer secret destroys
		// it (kms: secret_consumers:destroy), as over REST.
		if _, _, err := c.svc.RemoveConsumer(c.ctx, c.who, id, cons); err != nil {
			return fromKMS(err)
		}
		return c.answerAttr(id, outAttr{name: attrConsumer, index: i, val: textItem(consumerValue(cons))})
	case kms.AttrDeleteAll:
		return notSupported("consumers are deleted one at a time (each removal follows the deletion policy)")
	}
	return errf(kmip20.ResultReasonMultiValuedAttribute, "a %s is added or deleted, not set or modified", attrConsumer)
}

func consumerIndex(sec *kms.Secret, c kms.Consumer) int32 {
	return int32(consumers.Index(sec.Consumers, c))
}

// policyChange sets or deletes the deletion policy through the secret's
// os_encrypt_key_deletion_policy metadata, REST's way (secret_meta:post).
func (c *opCtx) policyChange(id string, kind kms.AttrOpKind, a attr) *opError {
	sec, err := c.svc.GetSecret(c.ctx, c.who, id, kms.View{})
	if err != nil {
		return fromKMS(err)
	}
	_, set := sec.Metadata[consumers.MetaDeletionPolicy]
	if kind == kms.AttrDelete || kind == kms.AttrDeleteAll {
		if !set {
			return errf(kmip20.ResultReasonAttributeNotFound, "the object's %s is its default; there is none to delete", attrDeletionPolicy)
		}
		if err := c.svc.DeleteMetadatum(c.ctx, c.who, id, consumers.MetaDeletionPolicy); err != nil {
			return fromKMS(err)
		}
		return c.answerAttr(id, outAttr{name: attrDeletionPolicy, val: textItem(string(sec.EffectivePolicy()))})
	}
	s, perr := a.val.text()
	if perr != nil {
		return perr
	}
	pol, err := consumers.ParsePolicy(s)
	if err != nil || pol == "" {
		return invalidField("%s is %s or %s", attrDeletionPolicy, kms.Retain, kms.OnLastConsumer)
	}
	if err := c.svc.SetMetadatum(c.ctx, c.who, id, consumers.MetaDeletionPolicy, string(pol), !set); err != nil {
		return fromKMS(err)
	}
	return c.answerAttr(id, outAttr{name: attrDeletionPolicy, val: textItem(string(pol))})
}
