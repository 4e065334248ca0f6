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
	sec, err := c.svc.GetObject(c.ctx, c.who, id)
	if err != nil {
		return fromKMS(err, false)
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
	sec, err := c.svc.GetObject(c.ctx, c.who, id)
	if err != nil {
		return fromKMS(err, false)
	}
	c.writeUID(sec.ID)
	seen := map[string]bool{}
	for _, a := range attributesOf(sec, c.ver, nil) {
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

// update applies a change and maps the service's refusal.
func (c *opCtx) update(id string, ch kms.Change) *opError {
	if _, err := c.svc.UpdateSecret(c.ctx, c.who, id, ch); err != nil {
		return fromKMS(err, false)
	}
	return nil
}

// target loads the object an attribute operation changes; reading it first
// gives Item Not Found / Permission Denied before any other check.
func (c *opCtx) target(p item) (*kms.Secret, *opError) {
	id, perr := c.uid(p)
	if perr != nil {
		return nil, perr
	}
	sec, err := c.svc.GetObject(c.ctx, c.who, id)
	if err != nil {
		return nil, fromKMS(err, false)
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

func attrNotFound(name string) *opError {
	return errf(kmip20.ResultReasonAttributeNotFound, "the object has no %s attribute", name)
}

func setName(name string) kms.Change { return kms.Change{Name: &name} }

// rename sets the object's Name from a Name attribute value and returns
// the value as stored.
func (c *opCtx) rename(id string, v item) (item, *opError) {
	n, perr := nameValue(v)
	if perr != nil {
		return item{}, perr
	}
	if perr := c.update(id, setName(n)); perr != nil {
		return item{}, perr
	}
	return nameItem(n), nil
}

// activateBy handles a client setting the Activation Date of a pre-active
// object: a date that has come activates it, a future one when it comes.
func (c *opCtx) activateBy(p item, a attr) *opError {
	t, perr := a.val.datetime()
	if perr != nil {
		return perr
	}
	sec, perr := c.target(p)
	if perr != nil {
		return perr
	}
	if sec.State != kms.PreActive {
		return errf(kmip20.ResultReasonReadOnlyAttribute, "the Activation Date of a %s object cannot change", sec.State)
	}
	if _, err := c.svc.SetActivationDate(c.ctx, c.who, sec.ID, t); err != nil {
		return fromKMS(err, true)
	}
	c.writeUID(sec.ID)
	if !c.ver.v2() {
		sec, err := c.svc.GetObject(c.ctx, c.who, sec.ID)
		if err == nil {
			v, _ := owned(sec, attrActivation)
			writeAttr(c.w, c.ver, outAttr{name: attrActivation, val: v})
		}
	}
	return nil
}

// opAddAttribute adds an attribute, or a new instance of a multi-valued one.
// The server picks the Attribute Index.
func opAddAttribute(c *opCtx, p item) *opError {
	a, done, perr := c.newAttr(p, "Add Attribute needs an attribute with a value")
	if done {
		return perr
	}
	if perr := settable(a); perr != nil {
		return perr
	}
	sec, perr := c.target(p)
	if perr != nil {
		return perr
	}
	out := outAttr{name: a.name, val: a.val}
	if a.name == attrName {
		if sec.Name != "" {
			return errf(kmip20.ResultReasonAttributeSingleValued, "the object already has a Name: modify it")
		}
		if out.val, perr = c.rename(sec.ID, a.val); perr != nil {
			return perr
		}
	} else {
		if perr := checkValue(a); perr != nil {
			return perr
		}
		insts := instances(sec, a.name)
		if len(insts) > 0 {
			if !multiValued(a.name) {
				return errf(kmip20.ResultReasonAttributeSingleValued, "the object already has a %s: modify it", a.name)
			}
			out.index = insts[len(insts)-1].index + 1
		}
		ch := kms.Change{Attributes: map[string]string{instanceKey(a.name, out.index): encodeValue(a.val)}}
		if perr := c.update(sec.ID, ch); perr != nil {
			return perr
		}
	}
	return c.answerAttr(sec.ID, out)
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
	if perr := settable(a); perr != nil {
		return perr
	}
	sec, perr := c.target(p)
	if perr != nil {
		return perr
	}
	out := outAttr{name: a.name, val: a.val}
	if a.name == attrName {
		if sec.Name == "" {
			return attrNotFound(a.name)
		}
		if out.val, perr = c.rename(sec.ID, a.val); perr != nil {
			return perr
		}
	} else {
		if perr := checkValue(a); perr != nil {
			return perr
		}
		idx, perr := pickInstance(sec, a, cur, hasCur && cur.val.typ != 0, c.ver)
		if perr != nil {
			return perr
		}
		out.index = idx
		ch := kms.Change{Attributes: map[string]string{instanceKey(a.name, idx): encodeValue(a.val)}}
		if perr := c.update(sec.ID, ch); perr != nil {
			return perr
		}
	}
	return c.answerAttr(sec.ID, out)
}

// pickInstance finds the instance an operation targets: the one whose
// value is cur's (2.x), the one at a.index (1.x), or the only one.
func pickInstance(sec *kms.Secret, a, cur attr, byValue bool, v version) (int32, *opError) {
	insts := instances(sec, a.name)
	if byValue {
		want := encodeValue(cur.val)
		for _, in := range insts {
			if encodeValue(in.val) == want {
				return in.index, nil
			}
		}
		return 0, errf(kmip20.ResultReasonAttributeInstanceNotFound, "no %s instance has that value", a.name)
	}
	if !v.v2() {
		for _, in := range insts {
			if in.index == a.index {
				return in.index, nil
			}
		}
		if len(insts) == 0 {
			return 0, attrNotFound(a.name)
		}
		return 0, errf(kmip20.ResultReasonAttributeInstanceNotFound, "the %s attribute has no index %d", a.name, a.index)
	}
	switch len(insts) {
	case 0:
		return 0, attrNotFound(a.name)
	case 1:
		return insts[0].index, nil
	}
	return 0, invalidField("the %s attribute has several instances: name one with a Current Attribute", a.name)
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
	if perr := settable(a); perr != nil {
		return perr
	}
	sec, perr := c.target(p)
	if perr != nil {
		return perr
	}
	var deleted outAttr
	if a.name == attrName {
		if sec.Name == "" {
			return attrNotFound(a.name)
		}
		deleted = outAttr{name: attrName, val: nameItem(sec.Name)}
		if perr := c.update(sec.ID, setName("")); perr != nil {
			return perr
		}
	} else {
		insts := instances(sec, a.name)
		ch := kms.Change{Attributes: map[string]string{}}
		if all {
			if len(insts) == 0 {
				return attrNotFound(a.name)
			}
			for _, in := range insts {
				ch.Attributes[instanceKey(a.name, in.index)] = ""
			}
			deleted = insts[0]
		} else {
			idx, perr := pickInstance(sec, a, a, byValue, version{1, 0})
			if perr != nil {
				return perr
			}
			for _, in := range insts {
				if in.index == idx {
					deleted = in
				}
			}
			ch.Attributes[instanceKey(a.name, idx)] = ""
		}
		if perr := c.update(sec.ID, ch); perr != nil {
			return perr
		}
	}
	return c.answerAttr(sec.ID, deleted)
}

// opSetAttribute (2.x) sets a single-valued attribute, adding it if absent.
func opSetAttribute(c *opCtx, p item) *opError {
	a, done, perr := c.newAttr(p, "Set Attribute needs a New Attribute")
	if done {
		return perr
	}
	if perr := settable(a); perr != nil {
		return perr
	}
	if a.name != attrName && multiValued(a.name) {
		return errf(kmip20.ResultReasonMultiValuedAttribute, "the %s attribute has several values: use Add or Modify Attribute", a.name)
	}
	sec, perr := c.target(p)
	if perr != nil {
		return perr
	}
	var ch kms.Change
	if a.name == attrName {
		n, perr := nameValue(a.val)
		if perr != nil {
			return perr
		}
		ch = setName(n)
	} else {
		if perr := checkValue(a); perr != nil {
			return perr
		}
		ch.Attributes = map[string]string{a.name: encodeValue(a.val)}
	}
	if perr := c.update(sec.ID, ch); perr != nil {
		return perr
	}
	c.writeUID(sec.ID)
	return nil
}
