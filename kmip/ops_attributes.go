package kmip

import (
	"github.com/gemalto/kmip-go/kmip20"

	"github.com/keywarden/keywarden/kms"
)

// opGetAttributes returns the attributes asked for (1.x Attribute Names,
// 2.x Attribute References), or all of them.
func opGetAttributes(c *opCtx, p item) *opError {
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	var names []string
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		var n string
		switch m.tag {
		case tagAttributeName:
			n, perr = m.text()
		case tagAttributeRef:
			n, perr = readReference(m)
		default:
			continue
		}
		if perr != nil {
			return perr
		}
		names = append(names, n)
	}
	sec, err := c.svc.GetSecret(c.ctx, c.who, id, kms.View{Destroyed: true})
	if err != nil {
		return fromKMS(err)
	}
	attrs := attributesOf(sec, c.ver, names)
	c.writeUID(sec.ID)
	if c.ver.v2() {
		c.w.begin(tagAttributes)
	}
	for _, a := range attrs {
		writeAttr(c.w, c.ver, a)
	}
	if c.ver.v2() {
		c.w.end()
	}
	return nil
}

// opGetAttributeList names the attributes an object has.
func opGetAttributeList(c *opCtx, p item) *opError {
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	sec, err := c.svc.GetSecret(c.ctx, c.who, id, kms.View{Destroyed: true})
	if err != nil {
		return fromKMS(err)
	}
	c.writeUID(sec.ID)
	seen := map[string]bool{}
	all := attributesOf(sec, c.ver, nil)
	if hasRNG(sec, c.ver) {
		all = append(all, outAttr{name: attrRNG})
	}
	if definedAt(attrOriginalDate, c.ver) {
		all = append(all, outAttr{name: attrOriginalDate})
	}
	all = append(all, keyFlags(sec, c.ver)...)
	for _, a := range all {
		if seen[a.name] {
			continue
		}
		seen[a.name] = true
		if c.ver.v2() {
			writeReference(c.w, a.name)
		} else {
			c.w.text(tagAttributeName, a.name)
		}
	}
	return nil
}

// payloadAttr reads the attribute of an attribute operation: the 2.x
// structure under tag2 (New or Current Attribute) or, with also1x, a 1.x
// Attribute.
func payloadAttr(p item, tag2 uint32, also1x bool) (attr, bool, *opError) {
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		switch {
		case also1x && m.tag == tagAttribute:
			a, perr := readAttribute(m)
			return a, true, perr
		case uint32(m.tag) == tag2:
			if perr := m.structure(); perr != nil {
				return attr{}, true, perr
			}
			inner := m.fields()
			v, ok := inner.next()
			if !ok {
				return attr{}, true, missingData("the %s holds no attribute", tagName(m.tag))
			}
			a, perr := readAttr2(v)
			return a, true, perr
		}
	}
	return attr{}, false, nil
}

// target loads the object an operation names, destroyed ones included;
// reading it first gives Item Not Found / Permission Denied before any
// other check.
func (c *opCtx) target(p item) (*kms.Secret, *opError) {
	id, perr := c.uid(p)
	if perr != nil {
		return nil, perr
	}
	sec, err := c.svc.GetSecret(c.ctx, c.who, id, kms.View{Destroyed: true})
	if err != nil {
		return nil, fromKMS(err)
	}
	return sec, nil
}

// newAttr reads the attribute an Add, Modify or Set carries (missing: the
// operation fails with missing). An Activation Date is a state change, handed
// to activateBy, whose answer ends the operation: done reports that the
// caller must return perr as it is.
func (c *opCtx) newAttr(p item, missing string) (a attr, done bool, perr *opError) {
	a, ok, perr := payloadAttr(p, uint32(kmip20.TagNewAttribute), true)
	switch {
	case perr != nil:
		return a, true, perr
	case !ok || a.val.typ == 0:
		return a, true, missingData("%s", missing)
	case a.name == attrActivation:
		return a, true, c.activateBy(p, a)
	}
	return a, false, nil
}

// answerAttr answers an attribute operation: the Unique Identifier and, in
// 1.x, the attribute instance it touched (2.x answers carry the id only).
func (c *opCtx) answerAttr(id string, a outAttr) *opError {
	c.writeUID(id)
	if !c.ver.v2() {
		writeAttr(c.w, c.ver, a)
	}
	return nil
}

// activateBy handles a client setting the Activation Date of a pre-active
// object: a date that has come activates it, a future one when it comes.
func (c *opCtx) activateBy(p item, a attr) *opError {
	t, perr := a.val.datetime()
	if perr != nil {
		return perr
	}
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	// kms refuses an object that is not pre-active (Read Only Attribute).
	sec, err := c.svc.SetActivationDate(c.ctx, c.who, id, t)
	if err != nil {
		return fromKMS(err)
	}
	v, _ := owned(sec, attrActivation)
	return c.answerAttr(sec.ID, outAttr{name: attrActivation, val: v})
}

// change hands an attribute operation to kms, which picks the instance
// and applies the single-valued rule in the same write (two clients adding
// at once both keep theirs), and answers with the instance touched.
func (c *opCtx) change(p item, op kms.AttrOp) *opError {
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	in, err := c.svc.ChangeAttribute(c.ctx, c.who, id, op)
	if err != nil {
		return fromKMS(err)
	}
	out := outAttr{name: op.Name, index: in.Index}
	if op.Name == attrName {
		out.val = nameItem(in.Value)
	} else if v, ok := decodeValue(in.Value); ok {
		out.val = v
	}
	return c.answerAttr(id, out)
}

// newOp is the kms operation of kind on a, its value in the stored form.
func newOp(kind kms.AttrOpKind, a attr) (kms.AttrOp, *opError) {
	// A Name is kept as one (Secret.Name), whatever KMIP allows.
	op := kms.AttrOp{Kind: kind, Name: a.name, Multi: a.name != attrName && multiValued(a.name)}
	if a.val.typ == 0 {
		return op, nil
	}
	if a.name == attrName {
		n, perr := nameValue(a.val)
		op.Value = n
		return op, perr
	}
	if perr := checkValue(a); perr != nil {
		return op, perr
	}
	op.Value = encodeValue(a.val)
	return op, nil
}

// opAddAttribute adds an attribute, or a new instance of a multi-valued one.
// The server picks the Attribute Index.
func opAddAttribute(c *opCtx, p item) *opError {
	a, done, perr := c.newAttr(p, "Add Attribute needs an attribute with a value")
	if done {
		return perr
	}
	if isVendorAttr(a.name) {
		return c.vendorChange(p, kms.AttrAdd, a, false)
	}
	if perr := settable(a); perr != nil {
		return perr
	}
	op, perr := newOp(kms.AttrAdd, a)
	if perr != nil {
		return perr
	}
	return c.change(p, op)
}

// opModifyAttribute replaces the value of an existing attribute instance:
// by Attribute Index in 1.x, by Current Attribute value (or the only
// instance) in 2.x.
func opModifyAttribute(c *opCtx, p item) *opError {
	a, done, perr := c.newAttr(p, "Modify Attribute needs an attribute with a value")
	if done {
		return perr
	}
	cur, hasCur, perr := payloadAttr(p, uint32(kmip20.TagCurrentAttribute), false)
	if perr != nil {
		return perr
	}
	if hasCur && cur.name != a.name {
		return invalidField("the Current and New Attribute name different attributes")
	}
	if isVendorAttr(a.name) {
		return c.vendorChange(p, kms.AttrModify, a, false)
	}
	if perr := settable(a); perr != nil {
		return perr
	}
	op, perr := newOp(kms.AttrModify, a)
	if perr != nil {
		return perr
	}
	if perr := selectInstance(&op, cur, hasCur && cur.val.typ != 0, a.index, c.ver); perr != nil {
		return perr
	}
	return c.change(p, op)
}

// selectInstance says which instance a Modify or Delete targets: the one
// whose value is cur's (2.x), the one at index (1.x), or the only one.
func selectInstance(op *kms.AttrOp, cur attr, byValue bool, index int32, v version) *opError {
	switch {
	case byValue && op.Name == attrName:
		n, perr := nameValue(cur.val)
		op.ByValue, op.Current = true, n
		return perr
	case byValue:
		op.ByValue, op.Current = true, encodeValue(cur.val)
	case !v.v2():
		op.ByIndex, op.Index = true, index
	}
	return nil
}

// opDeleteAttribute removes an attribute instance: 1.x by name and index,
// 2.x by Current Attribute value or, with an Attribute Reference, all of
// its instances.
func opDeleteAttribute(c *opCtx, p item) *opError {
	var a attr
	var all bool
	var byValue bool
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		var perr *opError
		switch m.tag {
		case tagAttributeName:
			a.name, perr = m.text()
		case tagAttributeIndex:
			a.index, perr = m.integer()
		case tagAttributeRef:
			a.name, perr = readReference(m)
			all = true
		case tagAttribute: // lenient: a whole 1.x Attribute
			a, perr = readAttribute(m)
		case kmip20.TagCurrentAttribute:
			var inner item
			fi := m.fields()
			if v, ok := fi.next(); ok {
				inner = v
			} else {
				perr = missingData("the Current Attribute holds no attribute")
				break
			}
			a, perr = readAttr2(inner)
			byValue = perr == nil && a.val.typ != 0
		}
		if perr != nil {
			return perr
		}
	}
	if a.name == "" {
		return missingData("Delete Attribute needs an attribute name or reference")
	}
	if isVendorAttr(a.name) {
		kind := kms.AttrDelete
		if all {
			kind = kms.AttrDeleteAll
		}
		return c.vendorChange(p, kind, a, a.val.typ != 0)
	}
	if perr := settable(a); perr != nil {
		return perr
	}
	op := kms.AttrOp{Kind: kms.AttrDelete, Name: a.name}
	if all {
		op.Kind = kms.AttrDeleteAll
	} else if perr := selectInstance(&op, a, byValue, a.index, version{1, 0}); perr != nil {
		return perr
	}
	return c.change(p, op)
}

// opSetAttribute (2.x) sets a single-valued attribute, adding it if absent.
func opSetAttribute(c *opCtx, p item) *opError {
	a, done, perr := c.newAttr(p, "Set Attribute needs a New Attribute")
	if done {
		return perr
	}
	if isVendorAttr(a.name) {
		return c.vendorChange(p, kms.AttrSet, a, false)
	}
	if perr := settable(a); perr != nil {
		return perr
	}
	op, perr := newOp(kms.AttrSet, a) // kms refuses a multi-valued one
	if perr != nil {
		return perr
	}
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	if _, err := c.svc.ChangeAttribute(c.ctx, c.who, id, op); err != nil {
		return fromKMS(err)
	}
	c.writeUID(id)
	return nil
}
