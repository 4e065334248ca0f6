package kmip

import (
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// newObject is what Create and Register learn from a request's attributes.
type newObject struct {
	name       string
	alg        string
	bits       int
	mode       string
	activation *time.Time        // the request's Activation Date (kms decides the state by it)
	limits     *kms.UsageLimits  // the request's Usage Limits (kms counts them)
	stored     map[string]string // attributes kept in Secret.Attributes
}

// requestAttrs finds the attributes of a Create or Register request: a 1.x
// Template-Attribute or a 2.x Attributes structure (either is accepted in
// either version).
func requestAttrs(p item) ([]attr, *opError) {
	var out []attr
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		var as []attr
		var perr *opError
		switch m.tag {
		case tagTemplateAttribute:
			if perr = m.structure(); perr == nil {
				as, perr = readTemplate(m)
			}
		case tagAttributes:
			as, perr = readAttributes(m)
		default:
			continue
		}
		if perr != nil {
			return nil, perr
		}
		out = append(out, as...)
	}
	return out, nil
}

// expectType lists the value type of the stored attributes whose type a
// client could easily get wrong.
var expectType = map[string]ttlv.Type{
	attrObjectGroup: ttlv.TypeTextString, attrUsageMask: ttlv.TypeInteger,
	"Contact Information": ttlv.TypeTextString, attrOpPolicyName: ttlv.TypeTextString,
	"Description": ttlv.TypeTextString, "Comment": ttlv.TypeTextString,
	attrParameters: ttlv.TypeStructure, "Link": ttlv.TypeStructure,
	"Application Specific Information": ttlv.TypeStructure, "Alternative Name": ttlv.TypeStructure,
	"Sensitive": ttlv.TypeBoolean, "Extractable": ttlv.TypeBoolean,
}

// checkValue verifies a stored attribute's value is present and typed.
func checkValue(a attr) *opError {
	if a.val.typ == 0 {
		return missingData("the %s attribute has no value", a.name)
	}
	if t, ok := expectType[a.name]; ok && a.val.typ != t {
		return errf(kmip20.ResultReasonInvalidAttributeValue, "the %s attribute must be a %s", a.name, t)
	}
	return nil
}

// newObjectFrom applies the attributes of a Create or Register request.
func newObjectFrom(c *opCtx, attrs []attr) (*newObject, *opError) {
	o := &newObject{stored: map[string]string{}}
	next := map[string]int32{}
	var hasName bool
	for _, a := range attrs {
		if a.val.typ == 0 {
			return nil, missingData("the %s attribute has no value", a.name)
		}
		var perr *opError
		switch a.name {
		case attrName:
			if hasName {
				return nil, notSupported("an object has at most one Name here")
			}
			o.name, perr = nameValue(a.val)
			hasName = true
		case attrAlgorithm:
			var v uint32
			v, perr = a.val.enum()
			o.alg = algFromKMIP(v)
		case attrLength:
			var v int32
			v, perr = a.val.integer()
			if perr == nil && v <= 0 {
				perr = invalidField("Cryptographic Length must be positive")
			}
			o.bits = int(v)
		case attrActivation:
			var t time.Time
			t, perr = a.val.datetime()
			// A future date leaves the object Pre-Active until it comes.
			o.activation = &t
		case attrObjectType:
			// Repeats the request's Object Type (KMIP 2.x clients do).
		case attrUsageLimits:
			o.limits, perr = usageLimitsFrom(a.val)
		default:
			if perr = settable(a); perr != nil {
				return nil, perr
			}
			if perr = checkValue(a); perr != nil {
				return nil, perr
			}
			if a.name == attrParameters {
				if m, ok := a.val.find(kmip14.TagBlockCipherMode); ok {
					v, perr := m.enum()
					if perr != nil {
						return nil, perr
					}
					o.mode = modeFromKMIP(v)
				}
			}
			idx := a.index
			if idx == 0 {
				idx = next[a.name]
			}
			if idx > 0 && !multiValued(a.name) {
				return nil, errf(kmip20.ResultReasonAttributeSingleValued, "the %s attribute has a single value", a.name)
			}
			next[a.name] = max(next[a.name], idx+1)
			o.stored[kms.InstanceKey(a.name, idx)] = encodeValue(a.val)
		}
		if perr != nil {
			return nil, perr
		}
	}
	return o, nil
}

func objectType(p item) (uint32, *opError) {
	m, ok := p.find(tagObjectType)
	if !ok {
		return 0, missingData("the request has no Object Type")
	}
	return m.enum()
}

// opCreate generates a symmetric key (or, as an extension, a passphrase for
// a Secret Data object). The object is Pre-Active unless the request gives
// an Activation Date that has come.
func opCreate(c *opCtx, p item) *opError {
	ot, perr := objectType(p)
	if perr != nil {
		return perr
	}
	attrs, perr := requestAttrs(p)
	if perr != nil {
		return perr
	}
	o, perr := newObjectFrom(c, attrs)
	if perr != nil {
		return perr
	}
	req := kms.GenerateRequest{CreateRequest: kms.CreateRequest{
		Name: o.name, Algorithm: o.alg, BitLength: o.bits, Mode: o.mode,
		Attributes: o.stored, State: kms.PreActive, ActivationDate: o.activation, UsageLimits: o.limits,
	}}
	switch kmip14.ObjectType(ot) {
	case kmip14.ObjectTypeSymmetricKey:
		req.Type = kms.Symmetric
	case kmip14.ObjectTypeSecretData:
		req.Type = kms.Passphrase
		req.Algorithm, req.BitLength = "", 0
	default:
		return errf(kmip20.ResultReasonInvalidObjectType,
			"Create makes Symmetric Keys (and Secret Data), not %s", kmip14.ObjectType(ot))
	}
	if len(o.stored) == 0 {
		req.Attributes = nil
	}
	req.ServedAtCreation = c.serveNext
	sec, err := c.svc.GenerateSecret(c.ctx, c.who, req)
	if err != nil {
		return fromKMS(err)
	}
	c.placeholder = sec.ID
	c.markServed(sec)
	c.w.enum(tagObjectType, ot)
	c.writeUID(sec.ID)
	return nil
}

// opRegister stores an object the client supplies.
func opRegister(c *opCtx, p item) *opError {
	ot, perr := objectType(p)
	if perr != nil {
		return perr
	}
	t, ok := typeFromKMIP(ot)
	if !ok {
		return errf(kmip20.ResultReasonInvalidObjectType, "objects of type %s cannot be registered",
			kmip14.ObjectType(ot))
	}
	obj, ok := p.find(objectTag[t])
	if !ok {
		return missingData("the request has no %s object", tagName(objectTag[t]))
	}
	reg, perr := readObject(ot, obj)
	if perr != nil {
		return perr
	}
	attrs, perr := requestAttrs(p)
	if perr != nil {
		return perr
	}
	o, perr := newObjectFrom(c, attrs)
	if perr != nil {
		return perr
	}
	for _, a := range reg.attrs { // properties of the object itself
		o.stored[a.name] = encodeValue(a.val)
	}
	// The object's own Key Block states algorithm and length; attributes
	// may repeat them but not contradict them.
	if reg.alg != "" && o.alg != "" && reg.alg != o.alg {
		return invalidField("the Cryptographic Algorithm attribute contradicts the Key Block")
	}
	if reg.bits != 0 && o.bits != 0 && reg.bits != o.bits {
		return invalidField("the Cryptographic Length attribute contradicts the key")
	}
	req := kms.CreateRequest{
		Name: o.name, Type: reg.typ, Algorithm: firstOf(reg.alg, o.alg), BitLength: max(reg.bits, o.bits),
		Mode: o.mode, Payload: reg.payload, ContentType: reg.contentType,
		Attributes: o.stored, State: kms.PreActive, ActivationDate: o.activation, UsageLimits: o.limits,
	}
	if len(o.stored) == 0 {
		req.Attributes = nil
	}
	req.ServedAtCreation = c.serveNext
	sec, err := c.svc.CreateSecret(c.ctx, c.who, req)
	crypto.Zero(reg.payload)
	if err != nil {
		return fromKMS(err)
	}
	c.placeholder = sec.ID
	c.markServed(sec)
	c.writeUID(sec.ID)
	return nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func opActivate(c *opCtx, p item) *opError {
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	if _, err := c.svc.Activate(c.ctx, c.who, id); err != nil {
		return fromKMS(err)
	}
	c.writeUID(id)
	return nil
}

// opRevoke deactivates an object, or marks it compromised for the Key
// Compromise and CA Compromise reasons.
func opRevoke(c *opCtx, p item) *opError {
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	rr, ok := p.find(kmip14.TagRevocationReason)
	if !ok {
		return missingData("Revoke needs a Revocation Reason")
	}
	code, ok := rr.find(kmip14.TagRevocationReasonCode)
	if !ok {
		return missingData("the Revocation Reason has no Revocation Reason Code")
	}
	v, perr := code.enum()
	if perr != nil {
		return perr
	}
	rev := kms.Revocation{Code: int(v)}
	if m, ok := rr.find(kmip14.TagRevocationMessage); ok {
		if rev.Message, perr = m.text(); perr != nil {
			return perr
		}
	}
	if m, ok := p.find(kmip14.TagCompromiseOccurrenceDate); ok {
		t, perr := m.datetime()
		if perr != nil {
			return perr
		}
		rev.Occurred = &t
	}
	if _, err := c.svc.RevokeFor(c.ctx, c.who, id, rev); err != nil {
		return fromKMS(err)
	}
	c.writeUID(id)
	return nil
}

// opDestroy erases an object's material; the service refuses an active one
// (at 1.x with Permission Denied, as the KMIP 1.4 test case SKLC-M-2 has
// it; 2.x has Wrong Key Lifecycle State for it).
func opDestroy(c *opCtx, p item) *opError {
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	if err := c.svc.Destroy(c.ctx, c.who, id); err != nil {
		e := fromKMS(err)
		if e.reason == kmip20.ResultReasonWrongKeyLifecycleState && !c.ver.v2() {
			e.reason = kmip20.ResultReasonPermissionDenied
		}
		return e
	}
	c.writeUID(id)
	return nil
}

// usageLimitsFrom reads a Usage Limits value (Total, optional Count,
// Unit); kms checks it. A Count other than the Total (some already used)
// is not accepted on a new key.
func usageLimitsFrom(v item) (*kms.UsageLimits, *opError) {
	if perr := v.structure(); perr != nil {
		return nil, perr
	}
	u := &kms.UsageLimits{}
	t, ok := v.find(kmip14.TagUsageLimitsTotal)
	if !ok {
		return nil, missingData("Usage Limits need a Usage Limits Total")
	}
	var perr *opError
	if u.Total, perr = t.long(); perr != nil {
		return nil, perr
	}
	if m, ok := v.find(kmip14.TagUsageLimitsCount); ok {
		n, perr := m.long()
		if perr != nil {
			return nil, perr
		}
		if n != u.Total {
			return nil, invalidField("a new key's Usage Limits Count is its Total")
		}
	}
	m, ok := v.find(kmip14.TagUsageLimitsUnit)
	if !ok {
		return nil, missingData("Usage Limits need a Usage Limits Unit")
	}
	unit, perr := m.enum()
	if perr != nil {
		return nil, perr
	}
	switch kmip14.UsageLimitsUnit(unit) {
	case kmip14.UsageLimitsUnitByte:
		u.Unit = kms.UsageBytes
	case kmip14.UsageLimitsUnitObject:
		u.Unit = kms.UsageObjects
	default:
		return nil, invalidField("Usage Limits Unit %d is not Byte or Object", unit)
	}
	return u, nil
}
