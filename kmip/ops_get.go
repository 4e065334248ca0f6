package kmip

import (
	"errors"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
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
	// The object is written inside kms's serve step, so that one refused
	// (a format it has none of) is not counted as served: it stays Fresh.
	var refused *opError
	_, payload, err := c.svc.ServePayload(c.ctx, c.who, id, func(sec *kms.Secret, payload []byte) error {
		c.w.enum(tagObjectType, typeToKMIP[sec.Type])
		c.writeUID(sec.ID)
		if refused = writeObject(c.w, sec, payload, format); refused != nil {
			return errNotServed
		}
		return nil
	})
	if refused != nil {
		return refused
	}
	if err != nil {
		return fromKMS(err)
	}
	crypto.Zero(payload)
	return nil
}

// errNotServed tells kms that the Get's object could not be written; the
// KMIP answer is the writer's own error.
var errNotServed = errors.New("kmip: the object cannot be served in the requested form")
