package kmip

import (
	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// Create Key Pair: one kms.CreateKeyPair, both halves linked (Public Key
// Link on the private key, Private Key Link on the public one). The 1.x
// request carries Common / Private Key / Public Key Template-Attributes,
// 2.x Common / Private Key / Public Key Attributes; either is accepted at
// either version, like Create.

// pairAttrs sorts a request's attributes into common, private and public.
func pairAttrs(p item) (common, priv, pub []attr, perr *opError) {
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		var as []attr
		switch m.tag {
		case kmip14.TagCommonTemplateAttribute, kmip14.TagPrivateKeyTemplateAttribute, kmip14.TagPublicKeyTemplateAttribute:
			if perr = m.structure(); perr == nil {
				as, perr = readTemplate(m)
			}
		case kmip20.TagCommonAttributes, kmip20.TagPrivateKeyAttributes, kmip20.TagPublicKeyAttributes:
			as, perr = readAttributes(m)
		default:
			continue
		}
		if perr != nil {
			return nil, nil, nil, perr
		}
		switch m.tag {
		case kmip14.TagCommonTemplateAttribute, kmip20.TagCommonAttributes:
			common = append(common, as...)
		case kmip14.TagPrivateKeyTemplateAttribute, kmip20.TagPrivateKeyAttributes:
			priv = append(priv, as...)
		default:
			pub = append(pub, as...)
		}
	}
	return common, priv, pub, nil
}

// withCommon is a half's attributes over the common ones: an attribute
// the half names replaces the common one of that name.
func withCommon(common, own []attr) []attr {
	named := map[string]bool{}
	for _, a := range own {
		named[a.name] = true
	}
	out := make([]attr, 0, len(common)+len(own))
	for _, a := range common {
		if !named[a.name] {
			out = append(out, a)
		}
	}
	return append(out, own...)
}

// curveBits maps a Recommended Curve to the size CreateKeyPair takes.
var curveBits = map[uint32]int{
	uint32(kmip14.RecommendedCurveP_256): 256, uint32(kmip14.RecommendedCurveP_384): 384,
	uint32(kmip14.RecommendedCurveP_521): 521,
}

// pairSize is the algorithm and size of a pair: Cryptographic Algorithm
// and Length, or for EC a Recommended Curve in the domain parameters.
func pairSize(o *newObject) (string, int, *opError) {
	alg := o.alg
	switch alg {
	case "rsa":
	case "ec", "ecdsa", "ecdh":
		alg = "ec"
		if v, ok := decodeValue(o.stored["Cryptographic Domain Parameters"]); ok {
			if rc, ok := v.find(kmip14.TagRecommendedCurve); ok {
				c, perr := rc.enum()
				if perr != nil {
					return "", 0, perr
				}
				bits, ok := curveBits[c]
				if !ok {
					return "", 0, errf(kmip20.ResultReasonBadCryptographicParameters, "curve %s is not served (P-256, P-384, P-521 are)", kmip14.RecommendedCurve(c))
				}
				if o.bits == 0 {
					o.bits = bits
				}
			}
		}
	case "":
		return "", 0, missingData("Create Key Pair needs a Cryptographic Algorithm (RSA or EC)")
	default:
		return "", 0, errf(kmip20.ResultReasonBadCryptographicParameters, "key pairs are RSA or EC, not %s", o.alg)
	}
	if o.bits == 0 {
		return "", 0, missingData("Create Key Pair needs a Cryptographic Length")
	}
	return alg, o.bits, nil
}

func opCreateKeyPair(c *opCtx, p item) *opError {
	common, privAttrs, pubAttrs, perr := pairAttrs(p)
	if perr != nil {
		return perr
	}
	po, perr := newObjectFrom(c, withCommon(common, privAttrs))
	if perr != nil {
		return perr
	}
	uo, perr := newObjectFrom(c, withCommon(common, pubAttrs))
	if perr != nil {
		return perr
	}
	alg, bits, perr := pairSize(po)
	if perr != nil {
		return perr
	}
	if a, b, perr := pairSize(uo); perr != nil || a != alg || b != bits {
		return invalidField("the private and public keys must have the same algorithm and length")
	}
	half := func(o *newObject) kms.CreateRequest {
		r := kms.CreateRequest{Name: o.name, Attributes: o.stored, State: kms.PreActive, ActivationDate: o.activation, UsageLimits: o.limits}
		if len(o.stored) == 0 {
			r.Attributes = nil
		}
		return r
	}
	priv, pub, err := c.svc.CreateKeyPair(c.ctx, c.who, kms.KeyPairRequest{
		Algorithm: alg, BitLength: bits, Private: half(po), Public: half(uo), Link: pairLink,
	})
	if err != nil {
		return fromKMS(err)
	}
	// KMIP: the ID Placeholder is the private key's identifier.
	c.placeholder = priv.ID
	c.w.text(kmip14.TagPrivateKeyUniqueIdentifier, priv.ID)
	c.w.text(kmip14.TagPublicKeyUniqueIdentifier, pub.ID)
	return nil
}

// pairLink encodes the Link attribute of one half of a pair.
func pairLink(toPublic bool, peer string) (string, string) {
	if toPublic {
		return linkAttr(kmip14.LinkTypePublicKeyLink, peer)
	}
	return linkAttr(kmip14.LinkTypePrivateKeyLink, peer)
}

// linkAttr is a Link attribute of type t to peer, in the stored form.
func linkAttr(t kmip14.LinkType, peer string) (string, string) {
	var w writer
	w.enum(kmip14.TagLinkType, uint32(t))
	w.text(kmip14.TagLinkedObjectIdentifier, peer)
	return "Link", encodeValue(item{typ: ttlv.TypeStructure, val: w.b})
}
