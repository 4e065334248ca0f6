package kmip

import (
	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// Served at creation (issue 14). The commonest exchange is one message:
// Create (or Register), then Get of the ID Placeholder. Looking one item
// ahead, the Create asks kms to make the object already not Fresh
// (kms.CreateRequest.ServedAtCreation), so the Get writes nothing. kms
// decides whether the caller may read it; this file only decides whether
// the next item is a Get that will serve this very object:
//
//   - it is the item right after the Create/Register (nothing in between
//     can change the object or the placeholder);
//   - it names the ID Placeholder (no Unique Identifier, or in 2.x the
//     placeholder enumeration): a text id cannot be the new object's;
//   - it asks a Key Format Type the object's type is served in (none,
//     Raw or Transparent Symmetric Key for a symmetric key; none or Opaque
//     for Secret Data; none for an Opaque Object) and no wrapping or
//     compression; other types (key pairs, certificates) are not flagged.
//
// The Get can still fail (a Maximum Response Size it exceeds, an internal
// error, a concurrent Destroy): then, or if it is never run, the process
// loop calls kms.RestoreFresh (audited fresh_restore). Known limit: a
// second client that Gets the new object (its id found by Locate) between
// the two items, before a failed Get, is followed by that restore.

// servedGet tells whether next is a Get that serves what cur creates.
func servedGet(ver version, cur, next batchItem) bool {
	if cur.err != nil || next.err != nil || next.op != uint32(kmip14.OperationGet) {
		return false
	}
	var formats []uint32
	switch cur.op {
	case uint32(kmip14.OperationCreate), uint32(kmip14.OperationRegister):
		m, ok := cur.payload.find(tagObjectType)
		if !ok {
			return false
		}
		ot, perr := m.enum()
		if perr != nil {
			return false
		}
		switch kmip14.ObjectType(ot) {
		case kmip14.ObjectTypeSymmetricKey:
			formats = []uint32{fmtRaw, fmtTransparent}
		case kmip14.ObjectTypeSecretData:
			formats = []uint32{fmtOpaque}
		case kmip14.ObjectTypeOpaqueObject:
			if cur.op == uint32(kmip14.OperationCreate) {
				return false
			}
		default:
			return false
		}
	default:
		return false
	}
	f := next.payload.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		switch m.tag {
		case tagUniqueIdentifier:
			if !namesPlaceholder(ver, m) {
				return false
			}
		case kmip14.TagKeyFormatType:
			v, perr := m.enum()
			if perr != nil || !contains(formats, v) {
				return false
			}
		default: // wrapping, compression, anything else: the plain path
			return false
		}
	}
	return true
}

// namesPlaceholder: a 2.x Unique Identifier enumeration uid() resolves to
// the ID Placeholder.
func namesPlaceholder(ver version, m item) bool {
	if m.typ != ttlv.TypeEnumeration || !ver.v2() {
		return false
	}
	v, perr := m.enum()
	if perr != nil {
		return false
	}
	switch kmip20.UniqueIdentifier(v) {
	case kmip20.UniqueIdentifierIDPlaceholder, kmip20.UniqueIdentifierCreate, kmip20.UniqueIdentifierRegister:
		return true
	}
	return false
}

func contains(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// unserve makes Fresh again the object id, created served for a Get that
// failed or never ran. A failure is logged: the object stays not Fresh.
func (s *Server) unserve(c *opCtx, id string) {
	if err := c.svc.RestoreFresh(c.ctx, c.who, id); err != nil {
		s.log.Warn("kmip: Fresh not restored after a failed Get", "id", id, "error", err.Error())
	}
}

// markServed notes sec if kms made it not Fresh for the next item's Get.
func (c *opCtx) markServed(sec *kms.Secret) {
	if c.serveNext && !sec.Fresh {
		c.served = sec.ID
	}
}
