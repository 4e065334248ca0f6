package kmip

import (
	"github.com/gemalto/kmip-go/kmip14"
)

// locateReq is a Locate request payload, read as the client's version
// defines it.
type locateReq struct {
	maxItems, offset int32
	mask             int32
	hasMask          bool
	groupMember      uint32
	attrs            []attr
}

// locateRequest reads a Locate payload. Each version defines its members:
//
//	1.0      Maximum Items, Storage Status Mask (On-line, Archival), Attribute…
//	1.1-1.2  + Object Group Member
//	1.3-1.4  + Offset Items
//	2.x      Maximum Items, Offset Items, Storage Status Mask (+ Destroyed
//	         Storage), Object Group Member, Attributes
//
// A member the version does not define is an Invalid Field, so a client
// learns it asked for something its version cannot mean.
func locateRequest(ver version, p item) (lr locateReq, perr *opError) {
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		switch m.tag {
		case kmip14.TagMaximumItems:
			lr.maxItems, perr = m.integer()
		case kmip14.TagOffsetItems:
			if !ver.atLeast(1, 3) {
				return lr, invalidField("Offset Items is defined from KMIP 1.3")
			}
			lr.offset, perr = m.integer()
		case kmip14.TagStorageStatusMask:
			lr.mask, perr = m.integer()
			lr.hasMask = true
			known := int32(storageOnline | storageArchive)
			if ver.v2() {
				known |= storageDestroyed
			}
			if perr == nil && lr.mask&^known != 0 {
				return lr, invalidField("Storage Status Mask 0x%x has bits KMIP %d.%d does not define",
					lr.mask, ver.major, ver.minor)
			}
		case kmip14.TagObjectGroupMember:
			if !ver.atLeast(1, 1) {
				return lr, invalidField("Object Group Member is defined from KMIP 1.1")
			}
			lr.groupMember, perr = m.enum()
			if perr == nil {
				perr = checkGroupMember(lr.groupMember)
			}
		case tagAttribute:
			if ver.v2() {
				return lr, invalidField("a KMIP 2.x Locate takes an Attributes structure, not Attribute")
			}
			var a attr
			a, perr = readAttribute(m)
			lr.attrs = append(lr.attrs, a)
		case tagAttributes:
			if !ver.v2() {
				return lr, invalidField("Attributes is a KMIP 2.x member; KMIP 1.x Locate takes Attribute")
			}
			var as []attr
			as, perr = readAttributes(m)
			lr.attrs = append(lr.attrs, as...)
		default:
			return lr, invalidField("unexpected %s in a Locate request", tagName(m.tag))
		}
		if perr != nil {
			return lr, perr
		}
	}
	if lr.maxItems < 0 || lr.offset < 0 {
		return lr, invalidField("Maximum Items and Offset Items cannot be negative")
	}
	if lr.groupMember != 0 && !hasAttr(lr.attrs, attrObjectGroup) {
		return lr, invalidField("Object Group Member needs an Object Group attribute to name the group")
	}
	return lr, nil
}

// checkGroupMember: both members KMIP defines are served (groupMember).
func checkGroupMember(v uint32) *opError {
	switch kmip14.ObjectGroupMember(v) {
	case kmip14.ObjectGroupMemberGroupMemberDefault, kmip14.ObjectGroupMemberGroupMemberFresh:
		return nil
	}
	return invalidField("unknown Object Group Member %d", v)
}

func hasAttr(as []attr, name string) bool {
	for _, a := range as {
		if a.name == name {
			return true
		}
	}
	return false
}
