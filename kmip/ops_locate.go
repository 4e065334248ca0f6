package kmip

import (
	"time"

	"github.com/gemalto/kmip-go/kmip14"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/kms"
)

// Storage Status Mask bits; Destroyed Storage is KMIP 2.0's.
const (
	storageOnline    = 1
	storageArchive   = 2
	storageDestroyed = 4
)

var dateAttrs = map[string]bool{
	attrInitialDate: true, attrActivation: true, attrDeactivation: true,
	attrCompromise: true, attrDestroy: true, attrLastChange: true,
}

// opLocate finds the caller's objects matching every attribute given:
// Name, Object Type, Cryptographic Algorithm and Length, State, the dates
// (one value: equal; two: a range), Object Group, custom attributes, the
// vendor x-keywarden-consumer and x-keywarden-deletion-policy
// (attr_vendor.go) and any other stored attribute. Maximum Items and Offset Items page the result.
// Objects of other projects are never seen: the service lists only the
// caller's, and only those it may read. The request and the response have
// the members the client's version defines (see locateRequest).
func opLocate(c *opCtx, p item) *opError {
	lr, perr := locateRequest(c.ver, p)
	if perr != nil {
		return perr
	}
	q, match, none, perr := locateQuery(lr.attrs)
	if perr != nil {
		return perr
	}
	if lr.hasMask {
		if lr.mask&storageDestroyed != 0 {
			q.View.Destroyed = true
		}
		switch {
		case lr.mask&(storageOnline|storageDestroyed) == 0:
			none = true // archival storage only: nothing is archived here
		case lr.mask&storageOnline == 0:
			match = append(match, func(s *kms.Secret) bool { return s.State == kms.Destroyed })
		}
	}
	var found []*kms.Secret
	if !none {
		list, _, err := c.svc.ListSecrets(c.ctx, c.who, q)
		if err != nil {
			return fromKMS(err)
		}
	next:
		for _, s := range list {
			for _, ok := range match {
				if !ok(s) {
					continue next
				}
			}
			found = append(found, s)
		}
	}
	if lr.groupMember != 0 {
		found = groupMember(found, lr.groupMember)
	}
	total := len(found)
	found = found[min(int(lr.offset), len(found)):]
	if lr.maxItems > 0 && len(found) > int(lr.maxItems) {
		found = found[:lr.maxItems]
	}
	// Located Items is a 1.3 member; 1.0-1.2 answer Unique Identifiers only.
	if c.ver.atLeast(1, 3) {
		c.w.integer(kmip14.TagLocatedItems, int32(total))
	}
	for _, s := range found {
		c.writeUID(s.ID)
	}
	if len(found) > 0 {
		c.placeholder = found[0].ID
	}
	return nil
}

// groupMember answers Object Group Member. Group Member Default: this
// server's policy is that a group's default member is its newest object.
// Group Member Fresh (§4.9): the members never served yet (Fresh), oldest
// first, as a pool of pre-made keys is drawn; none is an empty answer, not
// a new key. The list comes in creation order.
func groupMember(found []*kms.Secret, member uint32) []*kms.Secret {
	if kmip14.ObjectGroupMember(member) == kmip14.ObjectGroupMemberGroupMemberFresh {
		fresh := found[:0:0]
		for _, s := range found {
			if s.Fresh {
				fresh = append(fresh, s)
			}
		}
		return fresh
	}
	if len(found) == 0 {
		return nil
	}
	newest := found[0]
	for _, s := range found[1:] {
		if !s.Created.Before(newest.Created) {
			newest = s
		}
	}
	return []*kms.Secret{newest}
}

// locateQuery turns Locate attributes into a service query (what the store
// can filter) and predicates (the rest). none: nothing can match.
func locateQuery(attrs []attr) (q kms.ListQuery, match []func(*kms.Secret) bool, none bool, perr *opError) {
	dates := map[string][]time.Time{}
	for _, a := range attrs {
		if a.val.typ == 0 {
			return q, nil, false, missingData("the %s attribute has no value", a.name)
		}
		switch a.name {
		case attrObjectType:
			v, perr := a.val.enum()
			if perr != nil {
				return q, nil, false, perr
			}
			t, ok := typeFromKMIP(v)
			none = none || !ok || (q.Type != "" && q.Type != t)
			q.Type = t
		case attrName:
			n, perr := nameValue(a.val)
			if perr != nil {
				return q, nil, false, perr
			}
			none = none || (q.ExactName != "" && q.ExactName != n) || n == ""
			q.ExactName = n
		case attrLength:
			v, perr := a.val.integer()
			if perr != nil {
				return q, nil, false, perr
			}
			none = none || v <= 0 || (q.BitLength != 0 && q.BitLength != int(v))
			q.BitLength = int(v)
		case attrState:
			v, perr := a.val.enum()
			if perr != nil {
				return q, nil, false, perr
			}
			st, ok := stateFromKMIP(v)
			none = none || !ok || (q.State != "" && q.State != st)
			q.State = st
			q.View.Destroyed = q.View.Destroyed || st == kms.Destroyed
			if st == kms.Destroyed { // Destroyed and Destroyed Compromised
				match = append(match, func(s *kms.Secret) bool { return kmipState(s) == v })
			}
		case attrAlgorithm:
			v, perr := a.val.enum()
			if perr != nil {
				return q, nil, false, perr
			}
			match = append(match, func(s *kms.Secret) bool {
				got, ok := algToKMIP(s.Algorithm)
				return ok && got == v
			})
		case attrUniqueID:
			id, perr := a.val.text()
			if perr != nil {
				return q, nil, false, perr
			}
			match = append(match, func(s *kms.Secret) bool { return s.ID == id })
		case attrCertType:
			v, perr := a.val.enum()
			if perr != nil {
				return q, nil, false, perr
			}
			none = none || v != uint32(kmip14.CertificateTypeX_509)
			match = append(match, func(s *kms.Secret) bool { return s.Type == kms.Certificate })
		case attrConsumer:
			// Barbican's rule: a consumer is its service, resource type
			// and resource id.
			cons, perr := parseConsumer(a.val)
			if perr != nil {
				return q, nil, false, perr
			}
			match = append(match, func(s *kms.Secret) bool { return consumers.Index(s.Consumers, cons) >= 0 })
		case attrDeletionPolicy:
			v, perr := a.val.text()
			if perr != nil {
				return q, nil, false, perr
			}
			pol, err := consumers.ParsePolicy(v)
			if err != nil || pol == "" {
				return q, nil, false, invalidField("%s is %s or %s", attrDeletionPolicy, kms.Retain, kms.OnLastConsumer)
			}
			match = append(match, func(s *kms.Secret) bool { return s.EffectivePolicy() == pol })
		case attrDigest, attrRNG:
			ok, perr := serverAttrMatch(a)
			if perr != nil {
				return q, nil, false, perr
			}
			match = append(match, ok)
		default:
			if dateAttrs[a.name] {
				t, perr := a.val.datetime()
				if perr != nil {
					return q, nil, false, perr
				}
				dates[a.name] = append(dates[a.name], t)
				continue
			}
			if readOnly[a.name] {
				// An attribute this server does not keep: no object has it.
				none = true
				continue
			}
			name, want := a.name, encodeValue(a.val)
			match = append(match, func(s *kms.Secret) bool {
				for _, in := range instances(s, name) {
					if encodeValue(in.val) == want {
						return true
					}
				}
				return false
			})
		}
	}
	for name, ts := range dates {
		if len(ts) > 2 {
			return q, nil, false, invalidField("at most two %s values (a range) can be given", name)
		}
		lo, hi := ts[0], ts[len(ts)-1]
		if hi.Before(lo) {
			lo, hi = hi, lo
		}
		name := name
		match = append(match, func(s *kms.Secret) bool {
			v, ok := owned(s, name)
			if !ok {
				return false
			}
			t, _ := v.datetime()
			return !t.Before(lo) && !t.After(hi)
		})
	}
	return q, match, none, nil
}

// opCheck tells whether an object could be used: it exists, the caller may
// read it, and, when a Cryptographic Usage Mask is given, it is active and
// its own mask allows every usage asked for. There are no usage limits or
// leases here, so those checks always pass.
func opCheck(c *opCtx, p item) *opError {
	sec, perr := c.target(p)
	if perr != nil {
		return perr
	}
	if m, ok := p.find(kmip14.TagCryptographicUsageMask); ok {
		want, perr := m.integer()
		if perr != nil {
			return perr
		}
		if err := sec.Usable(kms.KeyUse(uint32(want))); err != nil {
			return fromKMS(err)
		}
	}
	c.writeUID(sec.ID)
	return nil
}
