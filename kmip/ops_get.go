package kmip

import (
	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"

	"github.com/keywarden/keywarden/crypto"
)

// opGet returns an object with its material, in the Key Format Type asked
// for (symmetric keys: Raw or Transparent Symmetric Key).
func opGet(c *opCtx, p item) *opError {
	id, perr := c.uid(p)
	if perr != nil {
		return perr
	}
	var format uint32
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		switch m.tag {
		case kmip14.TagKeyFormatType:
			if format, perr = m.enum(); perr != nil {
				return perr
			}
		case kmip14.TagKeyWrappingSpecification:
			return notSupported("key wrapping is not supported")
		case kmip14.TagKeyWrapType:
			// Not Wrapped and As Registered are the same here: nothing is
			// stored wrapped.
		case kmip14.TagKeyCompressionType:
			v, perr := m.enum()
			if perr != nil {
				return perr
			}
			if v != uint32(kmip14.KeyCompressionTypeECPublicKeyTypeUncompressed) {
				return errf(kmip20.ResultReasonKeyCompressionTypeNotSupported, "only uncompressed keys are served")
			}
		}
	}
	sec, payload, err := c.svc.GetPayload(c.ctx, c.who, id)
	if err != nil {
		return fromKMS(err)
	}
	defer crypto.Zero(payload)
	c.w.enum(tagObjectType, typeToKMIP[sec.Type])
	c.writeUID(sec.ID)
	return writeObject(c.w, sec, payload, format)
}
