package kmip

import (
	"bytes"
	gocrypto "crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

func gcmParams() ttlv.Value {
	return st(kmip14.TagCryptographicParameters, v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeGCM))
}

func params(vals ...ttlv.Value) ttlv.Value { return st(kmip14.TagCryptographicParameters, vals...) }

// createPair sends Create Key Pair in the client's version's shape.
func createPair(c *client, alg kmip14.CryptographicAlgorithm, bits int, privMask, pubMask kmip14.CryptographicUsageMask) (string, string) {
	c.t.Helper()
	common := attrs(c.ver, "Cryptographic Algorithm", alg, "Cryptographic Length", bits)
	priv := attrs(c.ver, "Cryptographic Usage Mask", privMask, "Name", nameVal("k"))
	pub := attrs(c.ver, "Cryptographic Usage Mask", pubMask, "Name", nameVal("k.pub"))
	tags := [3]ttlv.Tag{kmip14.TagCommonTemplateAttribute, kmip14.TagPrivateKeyTemplateAttribute, kmip14.TagPublicKeyTemplateAttribute}
	if c.ver.v2() {
		tags = [3]ttlv.Tag{kmip20.TagCommonAttributes, kmip20.TagPrivateKeyAttributes, kmip20.TagPublicKeyAttributes}
	}
	r := c.do(op{op: kmip14.OperationCreateKeyPair, payload: []ttlv.Value{
		wrapTag(tags[0], common), wrapTag(tags[1], priv), wrapTag(tags[2], pub)}}).ok(0)
	privID, _ := get(r, kmip14.TagPrivateKeyUniqueIdentifier).(string)
	pubID, _ := get(r, kmip14.TagPublicKeyUniqueIdentifier).(string)
	if privID == "" || pubID == "" {
		c.t.Fatalf("Create Key Pair answered %v", r)
	}
	return privID, pubID
}

func TestCreateKeyPairSignVerify(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 4}, {2, 0}} {
		for _, alg := range []kmip14.CryptographicAlgorithm{kmip14.CryptographicAlgorithmRSA, kmip14.CryptographicAlgorithmECDSA} {
			c := e.dial("p1")
			c.ver = ver
			bits := map[kmip14.CryptographicAlgorithm]int{kmip14.CryptographicAlgorithmRSA: 2048, kmip14.CryptographicAlgorithmECDSA: 256}[alg]
			privID, pubID := createPair(c, alg, bits, kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify)
			// The links, both ways.
			ga := c.do(byID(kmip14.OperationGetAttributes, privID)).ok(0)
			if raw, _ := ttlv.Marshal(ga); !bytes.Contains(raw, []byte(pubID)) {
				t.Errorf("%v: the private key's attributes do not link to %s", ver, pubID)
			}
			// Pre-Active: not used yet.
			msg := []byte("sign me")
			r := c.do(byID(kmip14.OperationSign, privID, v(kmip14.TagData, msg)))
			if ver.v2() {
				r.failed(0, uint32(kmip20.ResultReasonWrongKeyLifecycleState))
			} else {
				r.failed(0, uint32(kmip14.ResultReasonIllegalOperation))
			}
			c.do(byID(kmip14.OperationActivate, privID), byID(kmip14.OperationActivate, pubID)).ok(1)
			sig, _ := get(c.do(byID(kmip14.OperationSign, privID, v(kmip14.TagData, msg))).ok(0), kmip14.TagSignatureData).([]byte)
			// The signature verifies locally with the public key Get returns.
			pubDER, _ := get(c.do(byID(kmip14.OperationGet, pubID, v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeX_509))).ok(0),
				kmip14.TagPublicKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte)
			pub, err := x509.ParsePKIXPublicKey(pubDER)
			if err != nil {
				t.Fatal(err)
			}
			d := sha256.Sum256(msg)
			switch k := pub.(type) {
			case *rsa.PublicKey:
				err = rsa.VerifyPKCS1v15(k, gocrypto.SHA256, d[:], sig)
			case *ecdsa.PublicKey:
				if !ecdsa.VerifyASN1(k, d[:], sig) {
					err = errBadSig
				}
			}
			if err != nil {
				t.Fatalf("%v %v: the server's signature does not verify locally: %v", ver, alg, err)
			}
			valid := func(data []byte) any {
				return get(c.do(byID(kmip14.OperationSignatureVerify, pubID, v(kmip14.TagData, data), v(kmip14.TagSignatureData, sig))).ok(0),
					kmip14.TagValidityIndicator)
			}
			if got := valid(msg); got != ttlv.EnumValue(kmip14.ValidityIndicatorValid) {
				t.Errorf("%v: Signature Verify %v", ver, got)
			}
			if got := valid([]byte("other")); got != ttlv.EnumValue(kmip14.ValidityIndicatorInvalid) {
				t.Errorf("%v: Signature Verify of other data %v", ver, got)
			}
			// The public key may not sign: its usage mask says Verify.
			r = c.do(byID(kmip14.OperationSign, pubID, v(kmip14.TagData, msg)))
			if ver.v2() {
				r.failed(0, uint32(kmip20.ResultReasonIncompatibleCryptographicUsageMask))
			} else {
				r.failed(0, uint32(kmip14.ResultReasonIllegalOperation))
			}
			// Another project's caller may not use it.
			o := e.dial("p2")
			o.do(byID(kmip14.OperationSign, privID, v(kmip14.TagData, msg))).failed(0, uint32(kmip14.ResultReasonPermissionDenied))
			// The private key in PKCS#8 and, for RSA, PKCS#1.
			formats := []kmip14.KeyFormatType{kmip14.KeyFormatTypePKCS_8}
			if alg == kmip14.CryptographicAlgorithmRSA {
				formats = append(formats, kmip14.KeyFormatTypePKCS_1)
			}
			for _, f := range formats {
				c.do(byID(kmip14.OperationGet, privID, v(kmip14.TagKeyFormatType, f))).ok(0)
			}
		}
	}
}

type sigErr string

func (e sigErr) Error() string { return string(e) }

const errBadSig = sigErr("bad signature")

func TestEncryptDecrypt(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	c.ver = version{2, 0}
	id := uidOf(c.do(createAES(c.ver, 256, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskEncrypt|kmip14.CryptographicUsageMaskDecrypt,
		"Sensitive", true)).ok(0))
	c.do(byID(kmip14.OperationActivate, id)).ok(0)
	// Sensitive: used, never returned.
	c.do(byID(kmip14.OperationGet, id)).failed(0, uint32(kmip20.ResultReasonSensitive))
	data := bytes.Repeat([]byte("4k"), 2048)
	r := c.do(byID(kmip14.OperationEncrypt, id, gcmParams(), v(kmip14.TagData, data),
		v(kmip14.TagAuthenticatedEncryptionAdditionalData, []byte("aad")))).ok(0)
	ct, _ := get(r, kmip14.TagData).([]byte)
	iv, _ := get(r, kmip14.TagIVCounterNonce).([]byte)
	tag, _ := get(r, kmip14.TagAuthenticatedEncryptionTag).([]byte)
	if len(ct) != len(data) || len(iv) != 12 || len(tag) != 16 {
		t.Fatalf("GCM answer: %d %d %d", len(ct), len(iv), len(tag))
	}
	back := c.do(byID(kmip14.OperationDecrypt, id, gcmParams(), v(kmip14.TagData, ct), v(kmip14.TagIVCounterNonce, iv),
		v(kmip14.TagAuthenticatedEncryptionAdditionalData, []byte("aad")), v(kmip14.TagAuthenticatedEncryptionTag, tag))).ok(0)
	if !bytes.Equal(get(back, kmip14.TagData).([]byte), data) {
		t.Fatal("GCM round trip")
	}
	tag[0] ^= 1
	c.do(byID(kmip14.OperationDecrypt, id, gcmParams(), v(kmip14.TagData, ct), v(kmip14.TagIVCounterNonce, iv),
		v(kmip14.TagAuthenticatedEncryptionAdditionalData, []byte("aad")), v(kmip14.TagAuthenticatedEncryptionTag, tag))).
		failed(0, uint32(kmip14.ResultReasonCryptographicFailure))
	// A key registered in the clear, to check against Go's AES.
	key := bytes.Repeat([]byte{7}, 16)
	reg := uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, kmip14.ObjectTypeSymmetricKey),
		attrs(c.ver, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskEncrypt|kmip14.CryptographicUsageMaskDecrypt,
			"Activation Date", time.Now()),
		st(kmip14.TagSymmetricKey, keyBlock(kmip14.KeyFormatTypeRaw, key,
			v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmAES), v(kmip14.TagCryptographicLength, 128)))}}).ok(0))
	block, _ := aes.NewCipher(key)
	cbcIV := bytes.Repeat([]byte{1}, 16)
	local := make([]byte, 16)
	cipher.NewCBCEncrypter(block, cbcIV).CryptBlocks(local, append([]byte("0123456789a"), 5, 5, 5, 5, 5))
	cbc := params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeCBC), v(kmip14.TagPaddingMethod, kmip14.PaddingMethodPKCS5))
	got := get(c.do(byID(kmip14.OperationEncrypt, reg, cbc, v(kmip14.TagData, []byte("0123456789a")), v(kmip14.TagIVCounterNonce, cbcIV))).ok(0), kmip14.TagData)
	if !bytes.Equal(got.([]byte), local) {
		t.Fatalf("CBC: server %x, Go %x", got, local)
	}
	got = get(c.do(byID(kmip14.OperationDecrypt, reg, cbc, v(kmip14.TagData, local), v(kmip14.TagIVCounterNonce, cbcIV))).ok(0), kmip14.TagData)
	if string(got.([]byte)) != "0123456789a" {
		t.Fatalf("CBC decrypt: %q", got)
	}
	ctr := params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeCTR))
	stream := make([]byte, 5)
	cipher.NewCTR(block, cbcIV).XORKeyStream(stream, []byte("hello"))
	got = get(c.do(byID(kmip14.OperationEncrypt, reg, ctr, v(kmip14.TagData, []byte("hello")), v(kmip14.TagIVCounterNonce, cbcIV))).ok(0), kmip14.TagData)
	if !bytes.Equal(got.([]byte), stream) {
		t.Fatalf("CTR: server %x, Go %x", got, stream)
	}
	// Refusals: 3DES, an unknown padding, a streamed GCM with an 8-byte
	// tag (12 to 16 are served), no data.
	c.do(byID(kmip14.OperationEncrypt, reg, params(v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmDES3)), v(kmip14.TagData, []byte("x")))).
		failed(0, uint32(kmip20.ResultReasonBadCryptographicParameters))
	c.do(byID(kmip14.OperationEncrypt, reg, params(v(kmip14.TagPaddingMethod, kmip14.PaddingMethodX9_31)), v(kmip14.TagData, []byte("x")))).
		failed(0, uint32(kmip20.ResultReasonBadCryptographicParameters))
	c.do(byID(kmip14.OperationEncrypt, reg, params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeGCM), v(kmip14.TagTagLength, 8)),
		v(kmip14.TagData, []byte("x")), v(kmip14.TagIVCounterNonce, cbcIV), v(kmip14.TagInitIndicator, true))).
		failed(0, uint32(kmip14.ResultReasonInvalidField))
	c.do(byID(kmip14.OperationEncrypt, reg, cbc)).failed(0, uint32(kmip14.ResultReasonMissingData))
	// A 1-byte tag is no GCM tag length: General Failure (CS-BC-M-GCM-1).
	c.do(byID(kmip14.OperationEncrypt, reg, params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeGCM), v(kmip14.TagTagLength, 1)),
		v(kmip14.TagData, []byte("x")), v(kmip14.TagIVCounterNonce, cbcIV[:12]))).failed(0, uint32(kmip14.ResultReasonGeneralFailure))
}

func TestRSAEncryptAndMAC(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	privID, pubID := createPair(c, kmip14.CryptographicAlgorithmRSA, 2048, kmip14.CryptographicUsageMaskDecrypt, kmip14.CryptographicUsageMaskEncrypt)
	c.do(byID(kmip14.OperationActivate, privID), byID(kmip14.OperationActivate, pubID)).ok(1)
	for _, pad := range []kmip14.PaddingMethod{kmip14.PaddingMethodOAEP, kmip14.PaddingMethodPKCS1V1_5} {
		p := params(v(kmip14.TagPaddingMethod, pad), v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256))
		ct := get(c.do(byID(kmip14.OperationEncrypt, pubID, p, v(kmip14.TagData, []byte("secret")))).ok(0), kmip14.TagData)
		pt := get(c.do(byID(kmip14.OperationDecrypt, privID, p, v(kmip14.TagData, ct))).ok(0), kmip14.TagData)
		if string(pt.([]byte)) != "secret" {
			t.Fatalf("%v: %q", pad, pt)
		}
	}
	// HMAC-SHA256, against Go's.
	key := []byte("0123456789abcdef0123456789abcdef")
	hk := uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, kmip14.ObjectTypeSymmetricKey),
		attrs(c.ver, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskMACGenerate|kmip14.CryptographicUsageMaskMACVerify,
			"Activation Date", time.Now()),
		st(kmip14.TagSymmetricKey, keyBlock(kmip14.KeyFormatTypeRaw, key,
			v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmHMAC_SHA256), v(kmip14.TagCryptographicLength, 256)))}}).ok(0))
	m := hmac.New(sha256.New, key)
	m.Write([]byte("msg"))
	mac := get(c.do(byID(kmip14.OperationMAC, hk, v(kmip14.TagData, []byte("msg")))).ok(0), kmip14.TagMACData)
	if !bytes.Equal(mac.([]byte), m.Sum(nil)) {
		t.Fatal("HMAC differs from Go's")
	}
	ok := get(c.do(byID(kmip14.OperationMACVerify, hk, v(kmip14.TagData, []byte("msg")), v(kmip14.TagMACData, mac))).ok(0), kmip14.TagValidityIndicator)
	if ok != ttlv.EnumValue(kmip14.ValidityIndicatorValid) {
		t.Fatal(ok)
	}
	// Hash and RNG.
	d := get(c.do(op{op: kmip14.OperationHash, payload: []ttlv.Value{params(v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256)),
		v(kmip14.TagData, []byte("msg"))}}).ok(0), kmip14.TagData)
	if want := sha256.Sum256([]byte("msg")); !bytes.Equal(d.([]byte), want[:]) {
		t.Fatal("Hash")
	}
	rnd := get(c.do(op{op: kmip14.OperationRNGRetrieve, payload: []ttlv.Value{v(kmip14.TagDataLength, 32)}}).ok(0), kmip14.TagData)
	if len(rnd.([]byte)) != 32 {
		t.Fatal("RNG Retrieve")
	}
	c.do(op{op: kmip14.OperationRNGRetrieve, payload: []ttlv.Value{v(kmip14.TagDataLength, -1)}}).failed(0, uint32(kmip14.ResultReasonInvalidField))
	c.do(op{op: kmip14.OperationRNGSeed, payload: []ttlv.Value{v(kmip14.TagData, []byte("seed"))}}).ok(0)
}

func TestGetTransparentAsymmetric(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	material := func(id string, obj ttlv.Tag, f kmip14.KeyFormatType, tag ttlv.Tag) any {
		t.Helper()
		return get(c.do(byID(kmip14.OperationGet, id, v(kmip14.TagKeyFormatType, f))).ok(0), obj, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial, tag)
	}
	der := func(id string, obj ttlv.Tag, f kmip14.KeyFormatType) []byte {
		b, _ := get(c.do(byID(kmip14.OperationGet, id, v(kmip14.TagKeyFormatType, f))).ok(0), obj, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte)
		return b
	}
	privID, pubID := createPair(c, kmip14.CryptographicAlgorithmRSA, 2048, kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify)
	k, err := x509.ParsePKCS8PrivateKey(der(privID, kmip14.TagPrivateKey, kmip14.KeyFormatTypePKCS_8))
	if err != nil {
		t.Fatal(err)
	}
	rk := k.(*rsa.PrivateKey)
	for tag, want := range map[ttlv.Tag]*big.Int{kmip14.TagModulus: rk.N, kmip14.TagPrivateExponent: rk.D, kmip14.TagP: rk.Primes[0],
		kmip14.TagCRTCoefficient: rk.Precomputed.Qinv} {
		if got, ok := material(privID, kmip14.TagPrivateKey, kmip14.KeyFormatTypeTransparentRSAPrivateKey, tag).(*big.Int); !ok || got.Cmp(want) != 0 {
			t.Errorf("%v: %v", tag, got)
		}
	}
	if got, _ := material(pubID, kmip14.TagPublicKey, kmip14.KeyFormatTypeTransparentRSAPublicKey, kmip14.TagPublicExponent).(*big.Int); got == nil || got.Int64() != 65537 {
		t.Errorf("public exponent %v", got)
	}
	ecPriv, ecPub := createPair(c, kmip14.CryptographicAlgorithmEC, 384, kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify)
	pk, err := x509.ParsePKIXPublicKey(der(ecPub, kmip14.TagPublicKey, kmip14.KeyFormatTypeX_509))
	if err != nil {
		t.Fatal(err)
	}
	point, _ := pk.(*ecdsa.PublicKey).Bytes()
	if got, _ := material(ecPub, kmip14.TagPublicKey, kmip14.KeyFormatTypeTransparentECPublicKey, kmip14.TagQString).([]byte); !bytes.Equal(got, point) {
		t.Error("Q String is not the public point")
	}
	if got := material(ecPriv, kmip14.TagPrivateKey, kmip14.KeyFormatTypeTransparentECPrivateKey, kmip14.TagRecommendedCurve); got != ttlv.EnumValue(kmip14.RecommendedCurveP_384) {
		t.Errorf("curve %v", got)
	}
	c.do(byID(kmip14.OperationGet, ecPriv, v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeTransparentRSAPrivateKey))).
		failed(0, uint32(kmip14.ResultReasonKeyFormatTypeNotSupported))
	c.do(byID(kmip14.OperationGet, pubID, v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeTransparentRSAPrivateKey))).
		failed(0, uint32(kmip14.ResultReasonKeyFormatTypeNotSupported))
}
