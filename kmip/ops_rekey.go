package kmip

import (
	"encoding/binary"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// Re-key and Re-key Key Pair (KMIP 1.4 §4.4, §4.5): kms makes the
// replacement and changes the old object in one transaction; this file
// reads the request and encodes the Replacement/Replaced Object Links.
// Attributes in the request (Template-Attribute, 2.x Attributes; for a
// pair Common, Private Key and Public Key ones) are read by Create's rules
// (Name, Activation Date, Usage Mask, Cryptographic Parameters, Object
// Group, custom …; server-set ones refused) and set on the replacement
// over the old object's; kms refuses another algorithm or length.

// rekeyRequest reads the Offset and the attributes for halves objects (1:
// Re-key, 2: Re-key Key Pair).
func rekeyRequest(c *opCtx, p item, halves int) (kms.RekeyRequest, *opError) {
	req := kms.RekeyRequest{Link: replacementLink, Carry: func(name string) bool { return name != "Link" }, Shift: shiftDate}
	var common, private, public []attr
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		var as []attr
		var perr *opError
		switch m.tag {
		case kmip14.TagOffset:
			if m.typ != ttlv.TypeInterval || len(m.val) != 4 {
				return req, m.wrongType(ttlv.TypeInterval)
			}
			d := time.Duration(binary.BigEndian.Uint32(m.val)) * time.Second
			req.Offset = &d
			continue
		case kmip14.TagTemplateAttribute, kmip14.TagCommonTemplateAttribute,
			kmip14.TagPrivateKeyTemplateAttribute, kmip14.TagPublicKeyTemplateAttribute:
			if perr = m.structure(); perr == nil {
				as, perr = readTemplate(m)
			}
		case kmip20.TagAttributes, kmip20.TagCommonAttributes, kmip20.TagPrivateKeyAttributes, kmip20.TagPublicKeyAttributes:
			as, perr = readAttributes(m)
		default:
			continue
		}
		if perr != nil {
			return req, perr
		}
		switch m.tag {
		case kmip14.TagPrivateKeyTemplateAttribute, kmip20.TagPrivateKeyAttributes:
			private = append(private, as...)
		case kmip14.TagPublicKeyTemplateAttribute, kmip20.TagPublicKeyAttributes:
			public = append(public, as...)
		default:
			common = append(common, as...)
		}
	}
	if halves == 1 && len(private)+len(public) > 0 {
		return req, invalidField("Re-key takes a Template-Attribute (Attributes), not a key pair's")
	}
	for _, own := range [][]attr{private, public}[:halves] {
		as := append(append([]attr(nil), common...), own...)
		if len(as) == 0 {
			req.Set = append(req.Set, kms.RekeySet{})
			continue
		}
		o, perr := newObjectFrom(c, as)
		if perr != nil {
			return req, perr
		}
		if o.limits != nil {
			return req, invalidField("Usage Limits are given to Create or Register, not Re-key")
		}
		set := kms.RekeySet{Algorithm: o.alg, BitLength: o.bits, Mode: o.mode, ActivationDate: o.activation, Attributes: o.stored}
		if hasAttr(as, attrName) {
			set.Name = &o.name
		}
		req.Set = append(req.Set, set)
	}
	return req, nil
}

func opRekey(c *opCtx, p item) *opError {
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	req, perr := rekeyRequest(c, p, 1)
	if perr != nil {
		return perr
	}
	sec, err := c.svc.Rekey(c.ctx, c.who, id, req)
	if err != nil {
		return fromKMS(err)
	}
	c.placeholder = sec.ID
	c.writeUID(sec.ID)
	return nil
}

func opRekeyKeyPair(c *opCtx, p item) *opError {
	id := c.placeholder
	if m, ok := p.find(kmip14.TagPrivateKeyUniqueIdentifier); ok {
		var perr *opError
		if id, perr = m.text(); perr != nil {
			return perr
		}
	}
	if id == "" {
		return missingData("Re-key Key Pair needs a Private Key Unique Identifier")
	}
	req, perr := rekeyRequest(c, p, 2)
	if perr != nil {
		return perr
	}
	req.PairLink = pairLink
	// The public half is the one the private key links to; kms checks the
	// pair (same project, algorithm and size) and the rights on both.
	sec, err := c.svc.GetSecret(c.ctx, c.who, id, kms.View{Destroyed: true})
	if err != nil {
		return fromKMS(err)
	}
	priv, pub, err := c.svc.RekeyKeyPair(c.ctx, c.who, id, linked(sec, kmip14.LinkTypePublicKeyLink), req)
	if err != nil {
		return fromKMS(err)
	}
	c.placeholder = priv.ID
	c.w.text(kmip14.TagPrivateKeyUniqueIdentifier, priv.ID)
	if pub != nil {
		c.w.text(kmip14.TagPublicKeyUniqueIdentifier, pub.ID)
	}
	return nil
}

// replacementLink encodes the Link of a re-key: Replacement Object Link on
// the old object, Replaced Object Link on the new one.
func replacementLink(replacement bool, peer string) (string, string) {
	if replacement {
		return linkAttr(kmip14.LinkTypeReplacementObjectLink, peer)
	}
	return linkAttr(kmip14.LinkTypeReplacedObjectLink, peer)
}

// linked is the object sec's first Link of type t names, or "".
func linked(sec *kms.Secret, t kmip14.LinkType) string {
	for _, in := range sec.Instances("Link") {
		v, ok := decodeValue(in.Value)
		if !ok || v.typ != ttlv.TypeStructure {
			continue
		}
		lt, ok1 := v.find(kmip14.TagLinkType)
		id, ok2 := v.find(kmip14.TagLinkedObjectIdentifier)
		if !ok1 || !ok2 {
			continue
		}
		if e, perr := lt.enum(); perr == nil && e == uint32(t) {
			if s, perr := id.text(); perr == nil {
				return s
			}
		}
	}
	return ""
}

// shiftDate moves a Process Start or Protect Stop Date by by (the other
// dates are kms fields, which kms shifts).
func shiftDate(name, value string, by time.Duration) string {
	if name != "Process Start Date" && name != "Protect Stop Date" {
		return value
	}
	v, ok := decodeValue(value)
	if !ok {
		return value
	}
	t, perr := v.datetime()
	if perr != nil {
		return value
	}
	return encodeValue(timeItem(t.Add(by)))
}
