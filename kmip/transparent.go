package kmip

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"math/big"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Get of asymmetric keys in the Transparent formats: RSA (modulus,
// exponents, primes) and EC (curve and private scalar D or public point
// Q; the EC, ECDSA and ECDH formats carry the same members). Register reads
// them in transparent_register.go.

var transparentFormats = map[uint32]bool{
	uint32(kmip14.KeyFormatTypeTransparentRSAPrivateKey): true, uint32(kmip14.KeyFormatTypeTransparentRSAPublicKey): true,
	uint32(kmip14.KeyFormatTypeTransparentECPrivateKey): true, uint32(kmip14.KeyFormatTypeTransparentECPublicKey): true,
	uint32(kmip14.KeyFormatTypeTransparentECDSAPrivateKey): true, uint32(kmip14.KeyFormatTypeTransparentECDSAPublicKey): true,
	uint32(kmip14.KeyFormatTypeTransparentECDHPrivateKey): true, uint32(kmip14.KeyFormatTypeTransparentECDHPublicKey): true,
}

var curveEnum = map[int]kmip14.RecommendedCurve{
	256: kmip14.RecommendedCurveP_256, 384: kmip14.RecommendedCurveP_384, 521: kmip14.RecommendedCurveP_521,
}

// transparentMaterial is the encoded Key Material structure of a key in
// the Transparent format f; nil when f is not a Transparent format. The
// caller zeroes it.
func transparentMaterial(t kms.SecretType, der []byte, have, f uint32) ([]byte, *opError) {
	if !transparentFormats[f] {
		return nil, nil
	}
	var m writer
	if !writeTransparentMaterial(&m, t, der, have, f) {
		crypto.Zero(m.b)
		return nil, formatNotSupported(f, t)
	}
	return m.b, nil
}

// parseKey reads a stored asymmetric key in the encoded format have.
func parseKey(t kms.SecretType, der []byte, have uint32) (any, bool) {
	var k any
	var err error
	switch {
	case t == kms.Public && have == fmtX509:
		k, err = x509.ParsePKIXPublicKey(der)
	case t == kms.Public && have == fmtPKCS1:
		k, err = x509.ParsePKCS1PublicKey(der)
	case have == fmtPKCS8:
		k, err = x509.ParsePKCS8PrivateKey(der)
	case have == fmtPKCS1:
		k, err = x509.ParsePKCS1PrivateKey(der)
	case have == fmtECPrivate:
		k, err = x509.ParseECPrivateKey(der)
	default:
		return nil, false
	}
	return k, err == nil
}

// writeTransparentMaterial writes the Key Material structure of a key in a
// Transparent format; ok is false when the key is not of that format's
// algorithm and half.
func writeTransparentMaterial(w *writer, t kms.SecretType, der []byte, have, want uint32) bool {
	key, ok := parseKey(t, der, have)
	if !ok {
		return false
	}
	rsaFormat := want == uint32(kmip14.KeyFormatTypeTransparentRSAPrivateKey) || want == uint32(kmip14.KeyFormatTypeTransparentRSAPublicKey)
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if !rsaFormat || want != uint32(kmip14.KeyFormatTypeTransparentRSAPrivateKey) || len(k.Primes) != 2 {
			return false
		}
		w.begin(kmip14.TagKeyMaterial)
		for _, f := range []struct {
			tag ttlv.Tag
			v   *big.Int
		}{{kmip14.TagModulus, k.N}, {kmip14.TagPrivateExponent, k.D}, {kmip14.TagPublicExponent, big.NewInt(int64(k.E))},
			{kmip14.TagP, k.Primes[0]}, {kmip14.TagQ, k.Primes[1]}, {kmip14.TagPrimeExponentP, k.Precomputed.Dp},
			{kmip14.TagPrimeExponentQ, k.Precomputed.Dq}, {kmip14.TagCRTCoefficient, k.Precomputed.Qinv}} {
			bigInt(w, f.tag, f.v)
		}
		w.end()
	case *rsa.PublicKey:
		if want != uint32(kmip14.KeyFormatTypeTransparentRSAPublicKey) {
			return false
		}
		w.begin(kmip14.TagKeyMaterial)
		bigInt(w, kmip14.TagModulus, k.N)
		bigInt(w, kmip14.TagPublicExponent, big.NewInt(int64(k.E)))
		w.end()
	case *ecdsa.PrivateKey:
		c, ok := curveEnum[k.Curve.Params().BitSize]
		if rsaFormat || !ok || !privateFormat(want) {
			return false
		}
		d, err := k.Bytes()
		if err != nil {
			return false
		}
		defer crypto.Zero(d)
		w.begin(kmip14.TagKeyMaterial)
		w.enum(kmip14.TagRecommendedCurve, uint32(c))
		bigInt(w, kmip14.TagD, new(big.Int).SetBytes(d))
		w.end()
	case *ecdsa.PublicKey:
		c, ok := curveEnum[k.Curve.Params().BitSize]
		if rsaFormat || !ok || privateFormat(want) {
			return false
		}
		pk, err := k.ECDH()
		if err != nil {
			return false
		}
		w.begin(kmip14.TagKeyMaterial)
		w.enum(kmip14.TagRecommendedCurve, uint32(c))
		w.bytes(kmip14.TagQString, pk.Bytes()) // uncompressed point
		w.end()
	default:
		return false
	}
	return true
}

func privateFormat(f uint32) bool {
	private, _, _ := transparentHalf(f)
	return private
}

// bigInt writes a non-negative Big Integer: big-endian two's complement,
// padded with zeros to a multiple of 8 bytes.
func bigInt(w *writer, tag ttlv.Tag, v *big.Int) {
	b := v.Bytes()
	n := padded(len(b) + 1) // room for a zero sign bit
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	w.raw(tag, ttlv.TypeBigInteger, out)
	crypto.Zero(b)
	crypto.Zero(out)
}
