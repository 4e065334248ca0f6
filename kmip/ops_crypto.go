package kmip

import (
	gocrypto "crypto"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Encrypt, Decrypt, Sign, Signature Verify, MAC and MAC Verify: the request
// is read here into kms.CryptoParams; kms decides (policy secret:use,
// Active state, usage mask) and computes. Sign, Signature Verify, MAC, MAC
// Verify and Hash may come in parts (ops_stream.go), Encrypt and Decrypt
// too (ops_cipherstream.go). What the request leaves out of Cryptographic
// Parameters, the key's own Cryptographic Parameters attribute gives
// (keyParams; kms applies it).

// cryptoRequest is what the six operations read from a request.
type cryptoRequest struct {
	id     string
	params kms.CryptoParams
	data   []byte
	hasData,
	hasSig bool
	sig []byte // Signature Data or MAC Data

	// Streaming: Init Indicator, Final Indicator (and whether given),
	// Correlation Value.
	init, final, hasFinal bool
	corr                  []byte
}

var paddings = map[uint32]string{
	uint32(kmip14.PaddingMethodNone): "none", uint32(kmip14.PaddingMethodOAEP): "oaep",
	uint32(kmip14.PaddingMethodPKCS5): "pkcs5", uint32(kmip14.PaddingMethodPKCS1V1_5): "pkcs1v15",
	uint32(kmip14.PaddingMethodPSS): "pss",
}

var hashes = map[uint32]gocrypto.Hash{
	uint32(kmip14.HashingAlgorithmSHA_1): gocrypto.SHA1, uint32(kmip14.HashingAlgorithmSHA_224): gocrypto.SHA224,
	uint32(kmip14.HashingAlgorithmSHA_256): gocrypto.SHA256, uint32(kmip14.HashingAlgorithmSHA_384): gocrypto.SHA384,
	uint32(kmip14.HashingAlgorithmSHA_512): gocrypto.SHA512,
}

// signatureAlgs maps a Digital Signature Algorithm to its hash and padding.
var signatureAlgs = map[uint32]struct {
	hash    gocrypto.Hash
	padding string
}{
	uint32(kmip14.DigitalSignatureAlgorithmSHA_1WithRSAEncryption):   {gocrypto.SHA1, "pkcs1v15"},
	uint32(kmip14.DigitalSignatureAlgorithmSHA_224WithRSAEncryption): {gocrypto.SHA224, "pkcs1v15"},
	uint32(kmip14.DigitalSignatureAlgorithmSHA_256WithRSAEncryption): {gocrypto.SHA256, "pkcs1v15"},
	uint32(kmip14.DigitalSignatureAlgorithmSHA_384WithRSAEncryption): {gocrypto.SHA384, "pkcs1v15"},
	uint32(kmip14.DigitalSignatureAlgorithmSHA_512WithRSAEncryption): {gocrypto.SHA512, "pkcs1v15"},
	uint32(kmip14.DigitalSignatureAlgorithmRSASSA_PSS):               {0, "pss"},
	uint32(kmip14.DigitalSignatureAlgorithmECDSAWithSHA_1):           {gocrypto.SHA1, ""},
	uint32(kmip14.DigitalSignatureAlgorithmECDSAWithSHA224):          {gocrypto.SHA224, ""},
	uint32(kmip14.DigitalSignatureAlgorithmECDSAWithSHA256):          {gocrypto.SHA256, ""},
	uint32(kmip14.DigitalSignatureAlgorithmECDSAWithSHA384):          {gocrypto.SHA384, ""},
	uint32(kmip14.DigitalSignatureAlgorithmECDSAWithSHA512):          {gocrypto.SHA512, ""},
}

func badParams(format string, args ...any) *opError {
	return errf(kmip20.ResultReasonBadCryptographicParameters, format, args...)
}

// readParams decodes a Cryptographic Parameters structure.
func readParams(m item, p *kms.CryptoParams) *opError {
	if perr := m.structure(); perr != nil {
		return perr
	}
	f := m.fields()
	for x, ok := f.next(); ok; x, ok = f.next() {
		var v uint32
		var perr *opError
		switch x.tag {
		case kmip14.TagBlockCipherMode:
			if v, perr = x.enum(); perr == nil {
				if p.Mode = modeFromKMIP(v); p.Mode == "" {
					perr = badParams("unknown Block Cipher Mode %d", v)
				}
			}
		case kmip14.TagPaddingMethod:
			if v, perr = x.enum(); perr == nil {
				var ok bool
				if p.Padding, ok = paddings[v]; !ok {
					perr = badParams("Padding Method %s is not served", kmip14.PaddingMethod(v))
				}
			}
		case kmip14.TagHashingAlgorithm:
			if v, perr = x.enum(); perr == nil {
				var ok bool
				if p.Hash, ok = hashes[v]; !ok {
					perr = badParams("Hashing Algorithm %s is not served", kmip14.HashingAlgorithm(v))
				}
			}
		case kmip14.TagDigitalSignatureAlgorithm:
			if v, perr = x.enum(); perr == nil {
				s, ok := signatureAlgs[v]
				if !ok {
					perr = badParams("Digital Signature Algorithm %s is not served", kmip14.DigitalSignatureAlgorithm(v))
				}
				if s.hash != 0 {
					p.Hash = s.hash
				}
				if s.padding != "" {
					p.Padding = s.padding
				}
			}
		case kmip14.TagCryptographicAlgorithm:
			if v, perr = x.enum(); perr == nil {
				p.Algorithm = algFromKMIP(v)
				if p.Algorithm == "3des" {
					perr = badParams("3DES is refused by design: use AES")
				}
			}
		case kmip14.TagTagLength:
			var n int32
			if n, perr = x.integer(); perr == nil {
				p.TagLen = int(n)
				if n <= 0 {
					perr = badParams("Tag Length must be positive")
				}
			}
		case kmip14.TagSaltLength:
			var n int32
			if n, perr = x.integer(); perr == nil {
				p.SaltLen = int(n)
				if n < 0 {
					perr = badParams("Salt Length must not be negative")
				}
			}
		case kmip14.TagMaskGeneratorHashingAlgorithm:
			if v, perr = x.enum(); perr == nil {
				var ok bool
				if p.MGFHash, ok = hashes[v]; !ok {
					perr = badParams("Mask Generator Hashing Algorithm %s is not served", kmip14.HashingAlgorithm(v))
				}
			}
		case kmip14.TagPSource:
			var b []byte
			if b, perr = x.bytes(); perr == nil {
				p.Label = append([]byte{}, b...)
			}
		case kmip14.TagMaskGenerator:
			if v, perr = x.enum(); perr == nil && v != uint32(kmip14.MaskGeneratorMGF1) {
				perr = badParams("only the MGF1 mask generator is served")
			}
		}
		if perr != nil {
			return perr
		}
	}
	return nil
}

// readCrypto reads the fields the six operations share.
func readCrypto(c *opCtx, p item, keyed bool) (*cryptoRequest, *opError) {
	r := &cryptoRequest{params: kms.CryptoParams{KeyDefaults: keyParams}}
	var perr *opError
	if _, named := p.find(tagUniqueIdentifier); keyed && (named || !hasCorrelation(p)) {
		// A stream's later parts may leave the key out: the stream knows it.
		if r.id, perr = c.uid(p); perr != nil {
			return nil, perr
		}
	}
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		switch m.tag {
		case kmip14.TagCryptographicParameters:
			perr = readParams(m, &r.params)
		case kmip14.TagData:
			r.data, perr = m.bytes()
			r.hasData = true
		case kmip14.TagDigestedData:
			r.data, perr = m.bytes()
			r.hasData, r.params.Digested = true, true
		case kmip14.TagIVCounterNonce:
			r.params.IV, perr = m.bytes()
		case kmip14.TagAuthenticatedEncryptionAdditionalData:
			r.params.AAD, perr = m.bytes()
		case kmip14.TagAuthenticatedEncryptionTag:
			r.params.Tag, perr = m.bytes()
		case kmip14.TagSignatureData, kmip14.TagMACData:
			r.sig, perr = m.bytes()
			r.hasSig = true
		case kmip14.TagCorrelationValue:
			r.corr, perr = m.bytes()
		case kmip14.TagInitIndicator:
			r.init, perr = m.boolean()
		case kmip14.TagFinalIndicator:
			r.final, perr = m.boolean()
			r.hasFinal = true
		}
		if perr != nil {
			return nil, perr
		}
	}
	return r, nil
}

// keyParams reads a key's stored Cryptographic Parameters attribute. A
// field this server does not serve leaves that default out: the request's
// own value, or kms's, applies.
func keyParams(attrs map[string]string) kms.CryptoParams {
	var p kms.CryptoParams
	it, ok := decodeValue(attrs[attrParameters])
	if !ok {
		return p
	}
	f := it.fields()
	for x, ok := f.next(); ok; x, ok = f.next() {
		var w writer
		w.item(x.tag, x)
		_ = readParams(item{typ: ttlv.TypeStructure, val: w.b}, &p)
	}
	return p
}

func hasCorrelation(p item) bool {
	_, ok := p.find(kmip14.TagCorrelationValue)
	return ok
}

// cryptoOp reads a request and checks it carries data (and, for verify
// operations, the signature or MAC).
// A nil request with no error means the part was taken and answered: the
// handler has nothing more to do.
func cryptoOp(c *opCtx, p item, op uint32, needSig bool) (*cryptoRequest, *opError) {
	r, perr := readCrypto(c, p, op != uint32(kmip14.OperationHash))
	if perr != nil {
		return nil, perr
	}
	if r, perr = c.streamPart(op, r); r == nil || perr != nil {
		return nil, perr
	}
	if !r.hasData {
		return nil, missingData("the request has no Data")
	}
	if needSig && !r.hasSig {
		return nil, missingData("the request has no Signature Data or MAC Data")
	}
	return r, nil
}

func opEncrypt(c *opCtx, p item) *opError    { return encryptOrDecrypt(c, p, true) }
func opDecrypt(c *opCtx, p item) *opError    { return encryptOrDecrypt(c, p, false) }
func opSignVerify(c *opCtx, p item) *opError { return verify(c, p, false) }
func opMACVerify(c *opCtx, p item) *opError  { return verify(c, p, true) }

func encryptOrDecrypt(c *opCtx, p item, encrypt bool) *opError {
	op := uint32(kmip14.OperationDecrypt)
	if encrypt {
		op = uint32(kmip14.OperationEncrypt)
	}
	r, perr := readCrypto(c, p, true)
	if perr != nil {
		return perr
	}
	if r.streamed() {
		return c.cipherPart(op, r, encrypt)
	}
	if !r.hasData {
		return missingData("the request has no Data")
	}
	var res *kms.CryptoResult
	var err error
	if encrypt {
		res, err = c.svc.Encrypt(c.ctx, c.who, r.id, r.params, r.data)
	} else {
		res, err = c.svc.Decrypt(c.ctx, c.who, r.id, r.params, r.data)
	}
	if err != nil {
		return fromKMS(err)
	}
	c.writeUID(r.id)
	c.w.bytes(kmip14.TagData, res.Data)
	if !encrypt {
		crypto.Zero(res.Data)
		return nil
	}
	if res.IV != nil {
		c.w.bytes(kmip14.TagIVCounterNonce, res.IV)
	}
	if res.Tag != nil {
		c.w.bytes(kmip14.TagAuthenticatedEncryptionTag, res.Tag)
	}
	return nil
}

func opSign(c *opCtx, p item) *opError {
	r, perr := cryptoOp(c, p, uint32(kmip14.OperationSign), false)
	if r == nil {
		return perr
	}
	sig, err := c.svc.Sign(c.ctx, c.who, r.id, r.params, r.data)
	if err != nil {
		return fromKMS(err)
	}
	c.writeUID(r.id)
	c.w.bytes(kmip14.TagSignatureData, sig)
	return nil
}

func opMAC(c *opCtx, p item) *opError {
	r, perr := cryptoOp(c, p, uint32(kmip14.OperationMAC), false)
	if r == nil {
		return perr
	}
	mac, err := c.svc.MAC(c.ctx, c.who, r.id, r.params, r.data)
	if err != nil {
		return fromKMS(err)
	}
	c.writeUID(r.id)
	c.w.bytes(kmip14.TagMACData, mac)
	return nil
}

func verify(c *opCtx, p item, mac bool) *opError {
	op := uint32(kmip14.OperationSignatureVerify)
	if mac {
		op = uint32(kmip14.OperationMACVerify)
	}
	r, perr := cryptoOp(c, p, op, true)
	if r == nil {
		return perr
	}
	var ok bool
	var err error
	if mac {
		ok, err = c.svc.VerifyMAC(c.ctx, c.who, r.id, r.params, r.data, r.sig)
	} else {
		ok, err = c.svc.VerifySignature(c.ctx, c.who, r.id, r.params, r.data, r.sig)
	}
	if err != nil {
		return fromKMS(err)
	}
	c.writeUID(r.id)
	v := kmip14.ValidityIndicatorInvalid
	if ok {
		v = kmip14.ValidityIndicatorValid
	}
	c.w.enum(kmip14.TagValidityIndicator, uint32(v))
	return nil
}
