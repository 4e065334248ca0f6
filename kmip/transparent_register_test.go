package kmip

import (
	gocrypto "crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// registerTransparent registers a key whose Key Material is the structure
// of Transparent members ms.
func registerTransparent(ver version, objType kmip14.ObjectType, f kmip14.KeyFormatType, mask kmip14.CryptographicUsageMask, ms ...ttlv.Value) op {
	tag := kmip14.TagPrivateKey
	if objType == kmip14.ObjectTypePublicKey {
		tag = kmip14.TagPublicKey
	}
	kb := st(kmip14.TagKeyBlock, v(kmip14.TagKeyFormatType, f), st(kmip14.TagKeyValue, st(kmip14.TagKeyMaterial, ms...)))
	return op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, objType),
		attrs(ver, "Cryptographic Usage Mask", mask, "Activation Date", time.Now()), st(tag, kb)}}
}

func rsaMembers(k *rsa.PrivateKey) []ttlv.Value {
	return []ttlv.Value{v(kmip14.TagModulus, k.N), v(kmip14.TagPrivateExponent, k.D), v(kmip14.TagPublicExponent, big.NewInt(int64(k.E))),
		v(kmip14.TagP, k.Primes[0]), v(kmip14.TagQ, k.Primes[1]), v(kmip14.TagPrimeExponentP, k.Precomputed.Dp),
		v(kmip14.TagPrimeExponentQ, k.Precomputed.Dq), v(kmip14.TagCRTCoefficient, k.Precomputed.Qinv)}
}

// TestRegisterTransparent: RSA and EC keys registered in the Transparent
// formats are stored as PKCS#8 / SubjectPublicKeyInfo: Get returns the
// same key Go made, the server's signature with the private key verifies
// with Go, and Get in the Transparent format gives the members back.
func TestRegisterTransparent(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 4}, {2, 1}} {
		c := e.dial("p1")
		c.ver = ver
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		ek, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ed, _ := ek.Bytes()
		q, _ := ek.PublicKey.Bytes()
		ecPriv, ecPub := kmip14.KeyFormatTypeTransparentECDSAPrivateKey, kmip14.KeyFormatTypeTransparentECDSAPublicKey
		if ver.v2() {
			ecPriv, ecPub = kmip14.KeyFormatTypeTransparentECPrivateKey, kmip14.KeyFormatTypeTransparentECPublicKey
		}
		sign, verify := kmip14.CryptographicUsageMaskSign, kmip14.CryptographicUsageMaskVerify
		for _, k := range []struct {
			name          string
			priv          gocrypto.Signer
			privOp, pubOp op
		}{
			{"RSA", rk, registerTransparent(ver, kmip14.ObjectTypePrivateKey, kmip14.KeyFormatTypeTransparentRSAPrivateKey, sign, rsaMembers(rk)...),
				registerTransparent(ver, kmip14.ObjectTypePublicKey, kmip14.KeyFormatTypeTransparentRSAPublicKey, verify,
					v(kmip14.TagModulus, rk.N), v(kmip14.TagPublicExponent, big.NewInt(int64(rk.E))))},
			{"EC", ek, registerTransparent(ver, kmip14.ObjectTypePrivateKey, ecPriv, sign,
				v(kmip14.TagRecommendedCurve, kmip14.RecommendedCurveP_384), v(kmip14.TagD, new(big.Int).SetBytes(ed))),
				registerTransparent(ver, kmip14.ObjectTypePublicKey, ecPub, verify,
					v(kmip14.TagRecommendedCurve, kmip14.RecommendedCurveP_384), v(kmip14.TagQString, q))},
		} {
			privID := uidOf(c.do(k.privOp).ok(0))
			pubID := uidOf(c.do(k.pubOp).ok(0))
			getDER := func(id string, obj ttlv.Tag, f kmip14.KeyFormatType) []byte {
				b, _ := get(c.do(byID(kmip14.OperationGet, id, v(kmip14.TagKeyFormatType, f))).ok(0), obj, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte)
				return b
			}
			got, err := x509.ParsePKCS8PrivateKey(getDER(privID, kmip14.TagPrivateKey, kmip14.KeyFormatTypePKCS_8))
			if err != nil || !k.priv.(interface {
				Equal(gocrypto.PrivateKey) bool
			}).Equal(got) {
				t.Fatalf("%v %s: Get PKCS#8 is not the registered key (%v)", ver, k.name, err)
			}
			pub, err := x509.ParsePKIXPublicKey(getDER(pubID, kmip14.TagPublicKey, kmip14.KeyFormatTypeX_509))
			if err != nil || !k.priv.Public().(interface{ Equal(gocrypto.PublicKey) bool }).Equal(pub) {
				t.Fatalf("%v %s: Get SPKI is not the registered key (%v)", ver, k.name, err)
			}
			// Without a format, Get answers KMIP's default: PKCS#1 for an
			// RSA private key, PKCS#8 (the stored form) for EC.
			want := kmip14.KeyFormatTypePKCS_8
			if k.name == "RSA" {
				want = kmip14.KeyFormatTypePKCS_1
			}
			r := c.do(byID(kmip14.OperationGet, privID)).ok(0)
			if f := get(r, kmip14.TagPrivateKey, kmip14.TagKeyBlock, kmip14.TagKeyFormatType); f != ttlv.EnumValue(want) {
				t.Errorf("%v %s: default format %v", ver, k.name, f)
			}
			msg := []byte("signed by a registered key")
			sig, _ := get(c.do(byID(kmip14.OperationSign, privID, v(kmip14.TagData, msg))).ok(0), kmip14.TagSignatureData).([]byte)
			d := sha256.Sum256(msg)
			switch pk := pub.(type) {
			case *rsa.PublicKey:
				err = rsa.VerifyPKCS1v15(pk, gocrypto.SHA256, d[:], sig)
			case *ecdsa.PublicKey: // P-384: SHA-384 by default
				d := sha512.Sum384(msg)
				if !ecdsa.VerifyASN1(pk, d[:], sig) {
					err = errBadSig
				}
			}
			if err != nil {
				t.Fatalf("%v %s: the server's signature does not verify with Go: %v", ver, k.name, err)
			}
		}
		// The members come back in the Transparent formats (ECDH: the same
		// members as EC).
		ecID := uidOf(c.do(registerTransparent(ver, kmip14.ObjectTypePrivateKey, kmip14.KeyFormatTypeTransparentECDHPrivateKey, sign,
			v(kmip14.TagRecommendedCurve, kmip14.RecommendedCurveP_384), v(kmip14.TagD, new(big.Int).SetBytes(ed)))).ok(0))
		r0 := c.do(byID(kmip14.OperationGet, ecID, v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeTransparentECDHPrivateKey))).ok(0)
		if d, _ := get(r0, kmip14.TagPrivateKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial, kmip14.TagD).(*big.Int); d == nil || d.Cmp(new(big.Int).SetBytes(ed)) != 0 {
			t.Errorf("%v: Get in Transparent ECDH Private Key: D %v", ver, d)
		}
		id := uidOf(c.do(registerTransparent(ver, kmip14.ObjectTypePrivateKey, kmip14.KeyFormatTypeTransparentRSAPrivateKey, sign,
			v(kmip14.TagModulus, rk.N), v(kmip14.TagPublicExponent, big.NewInt(int64(rk.E))), v(kmip14.TagP, rk.Primes[0]), v(kmip14.TagQ, rk.Primes[1]))).ok(0))
		r := c.do(byID(kmip14.OperationGet, id, v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeTransparentRSAPrivateKey))).ok(0)
		if d, _ := get(r, kmip14.TagPrivateKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial, kmip14.TagCRTCoefficient).(*big.Int); d == nil || d.Cmp(rk.Precomputed.Qinv) != 0 {
			t.Errorf("%v: registered from the primes alone, the CRT coefficient is %v", ver, d)
		}
	}
}

// TestRegisterTransparentRefused: inconsistent or invalid key material is
// refused with Invalid Field (or Missing Data when a member is missing) and
// a message that names the problem; nothing is stored.
func TestRegisterTransparentRefused(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	q, _ := ek.PublicKey.Bytes()
	ed, _ := ek.Bytes()
	offCurve := append([]byte(nil), q...)
	offCurve[len(offCurve)-1] ^= 1
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	members := func(tag ttlv.Tag, val any) []ttlv.Value {
		ms := rsaMembers(rk)
		for i := range ms {
			if ms[i].Tag == tag {
				ms[i] = v(tag, val)
			}
		}
		return ms
	}
	plus1 := func(b *big.Int) *big.Int { return new(big.Int).Add(b, big.NewInt(1)) }
	priv, pub := kmip14.ObjectTypePrivateKey, kmip14.ObjectTypePublicKey
	rsaPriv, rsaPub, ecPriv, ecPub := kmip14.KeyFormatTypeTransparentRSAPrivateKey, kmip14.KeyFormatTypeTransparentRSAPublicKey,
		kmip14.KeyFormatTypeTransparentECPrivateKey, kmip14.KeyFormatTypeTransparentECPublicKey
	curve := v(kmip14.TagRecommendedCurve, kmip14.RecommendedCurveP_256)
	n := ek.Curve.Params().N
	for _, tc := range []struct {
		what   string
		obj    kmip14.ObjectType
		f      kmip14.KeyFormatType
		ms     []ttlv.Value
		reason kmip20.ResultReason
		msg    string
	}{
		{"wrong CRT coefficient", priv, rsaPriv, members(kmip14.TagCRTCoefficient, plus1(rk.Precomputed.Qinv)), kmip20.ResultReasonInvalidField, "CRT Coefficient does not match"},
		{"wrong prime exponent", priv, rsaPriv, members(kmip14.TagPrimeExponentP, plus1(rk.Precomputed.Dp)), kmip20.ResultReasonInvalidField, "Prime Exponent P does not match"},
		{"wrong private exponent", priv, rsaPriv, members(kmip14.TagPrivateExponent, plus1(rk.D)), kmip20.ResultReasonInvalidField, "inconsistent"},
		{"P not a factor", priv, rsaPriv, members(kmip14.TagP, plus1(rk.Primes[0])), kmip20.ResultReasonInvalidField, "inconsistent"},
		{"no primes", priv, rsaPriv, []ttlv.Value{v(kmip14.TagModulus, rk.N), v(kmip14.TagPublicExponent, big.NewInt(65537)),
			v(kmip14.TagPrivateExponent, rk.D)}, kmip20.ResultReasonMissingData, "needs P and Q"},
		{"even exponent", pub, rsaPub, []ttlv.Value{v(kmip14.TagModulus, rk.N), v(kmip14.TagPublicExponent, big.NewInt(65536))}, kmip20.ResultReasonInvalidField, "Public Exponent"},
		{"small modulus", pub, rsaPub, []ttlv.Value{v(kmip14.TagModulus, big.NewInt(3233)), v(kmip14.TagPublicExponent, big.NewInt(17))}, kmip20.ResultReasonInvalidField, "1024 bits"},
		{"negative modulus", pub, rsaPub, []ttlv.Value{v(kmip14.TagModulus, new(big.Int).Neg(rk.N)), v(kmip14.TagPublicExponent, big.NewInt(65537))}, kmip20.ResultReasonInvalidField, "negative"},
		{"point not on the curve", pub, ecPub, []ttlv.Value{curve, v(kmip14.TagQString, offCurve)}, kmip20.ResultReasonInvalidField, "not an uncompressed point on P-256"},
		{"compressed point", pub, ecPub, []ttlv.Value{curve, v(kmip14.TagQString, elliptic.MarshalCompressed(elliptic.P256(), ek.X, ek.Y))}, kmip20.ResultReasonInvalidField, "uncompressed point"},
		{"D of zero", priv, ecPriv, []ttlv.Value{curve, v(kmip14.TagD, big.NewInt(0))}, kmip20.ResultReasonInvalidField, "not a private key on P-256"},
		{"D at the order", priv, ecPriv, []ttlv.Value{curve, v(kmip14.TagD, n)}, kmip20.ResultReasonInvalidField, "not a private key on P-256"},
		{"D with another Q", priv, ecPriv, []ttlv.Value{curve, v(kmip14.TagD, new(big.Int).SetBytes(ed)), v(kmip14.TagQString, other.PublicKey().Bytes())}, kmip20.ResultReasonInvalidField, "not the public point of D"},
		{"no curve", pub, ecPub, []ttlv.Value{v(kmip14.TagQString, q)}, kmip20.ResultReasonMissingData, "Recommended Curve"},
		{"unsupported curve", pub, ecPub, []ttlv.Value{v(kmip14.TagRecommendedCurve, kmip14.RecommendedCurveSECP256K1), v(kmip14.TagQString, q)}, kmip20.ResultReasonFeatureNotSupported, "not supported"},
		{"private format for a public key", pub, rsaPriv, rsaMembers(rk), kmip20.ResultReasonInvalidField, "cannot be registered in the TransparentRSAPrivateKey format"},
		{"EC members in an RSA format", pub, rsaPub, []ttlv.Value{curve, v(kmip14.TagQString, q)}, kmip20.ResultReasonMissingData, "Modulus"},
	} {
		r := c.do(registerTransparent(c.ver, tc.obj, tc.f, kmip14.CryptographicUsageMaskSign, tc.ms...))
		msg := r.failed(0, uint32(tc.reason))
		if !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %q, want %q", tc.what, msg, tc.msg)
		}
	}
	// A Transparent format with byte-string material, and a stated
	// algorithm that is not the key's.
	c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, kmip14.ObjectTypePublicKey), attrs(c.ver),
		st(kmip14.TagPublicKey, keyBlock(kmip14.KeyFormatTypeTransparentECPublicKey, q))}}).failed(0, uint32(kmip14.ResultReasonInvalidField))
	kb := st(kmip14.TagKeyBlock, v(kmip14.TagKeyFormatType, ecPub), st(kmip14.TagKeyValue, st(kmip14.TagKeyMaterial, curve, v(kmip14.TagQString, q))),
		v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmRSA))
	msg := c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, pub), attrs(c.ver), st(kmip14.TagPublicKey, kb)}}).
		failed(0, uint32(kmip14.ResultReasonInvalidField))
	if !strings.Contains(msg, "the key material is ec") {
		t.Errorf("stated RSA for an EC key: %q", msg)
	}
	// Nothing was stored.
	loc := c.do(op{op: kmip14.OperationLocate, payload: []ttlv.Value{attr1OrAttrs(c.ver, "Object Type", kmip14.ObjectTypePublicKey)}}).ok(0)
	if ids := all(loc, tagUniqueIdentifier); len(ids) != 0 {
		t.Errorf("refused registrations stored %d objects", len(ids))
	}
}
