package kmip

// Register of asymmetric keys in the Transparent formats: the Key Material
// structure is checked (an RSA key's primes, exponents and CRT values
// agree; an EC point is on its curve; D is in range) and the key is stored
// as every registered key is, PKCS#8 or SubjectPublicKeyInfo PEM, so that
// Get in any format, Sign and REST read it as they read the others.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"math/big"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// transparentHalf tells whether a Transparent format holds a private key
// and whether it is RSA; ok is false for the formats Register does not
// read (symmetric, DSA, DH, ECMQV).
func transparentHalf(f uint32) (private, isRSA, ok bool) {
	switch kmip14.KeyFormatType(f) {
	case kmip14.KeyFormatTypeTransparentRSAPrivateKey:
		return true, true, true
	case kmip14.KeyFormatTypeTransparentRSAPublicKey:
		return false, true, true
	case kmip14.KeyFormatTypeTransparentECPrivateKey, kmip14.KeyFormatTypeTransparentECDSAPrivateKey,
		kmip14.KeyFormatTypeTransparentECDHPrivateKey:
		return true, false, true
	case kmip14.KeyFormatTypeTransparentECPublicKey, kmip14.KeyFormatTypeTransparentECDSAPublicKey,
		kmip14.KeyFormatTypeTransparentECDHPublicKey:
		return false, false, true
	}
	return false, false, false
}

// fromTransparent reads the Key Material structure km of a Private or
// Public Key in the Transparent format f and returns the key's DER
// (PKCS#8 or SubjectPublicKeyInfo), its Key Format Type and PEM block
// type. The caller zeroes the DER.
func fromTransparent(t kms.SecretType, f uint32, km item) ([]byte, uint32, string, *opError) {
	private, isRSA, ok := transparentHalf(f)
	if !ok {
		return nil, 0, "", formatNotSupported(f, t)
	}
	if private != (t == kms.Private) {
		return nil, 0, "", invalidField("a %s cannot be registered in the %s format", tagName(objectTag[t]), kmip14.KeyFormatType(f))
	}
	if km.typ != ttlv.TypeStructure {
		return nil, 0, "", invalidField("a %s Key Material is a structure, not a %s", kmip14.KeyFormatType(f), km.typ)
	}
	var key any
	var perr *opError
	if isRSA {
		key, perr = rsaFromTransparent(private, km)
	} else {
		key, perr = ecFromTransparent(private, km)
	}
	if perr != nil {
		return nil, 0, "", perr
	}
	if private {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, 0, "", invalidField("the %s cannot be encoded: %v", kmip14.KeyFormatType(f), err)
		}
		return der, fmtPKCS8, "PRIVATE KEY", nil
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, 0, "", invalidField("the %s cannot be encoded: %v", kmip14.KeyFormatType(f), err)
	}
	return der, fmtX509, "PUBLIC KEY", nil
}

// bigInts reads the Big Integer members of km named in tags; a member
// given twice, negative or of another type is refused.
func bigInts(km item, tags ...ttlv.Tag) (map[ttlv.Tag]*big.Int, *opError) {
	out := map[ttlv.Tag]*big.Int{}
	f := km.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		want := false
		for _, tg := range tags {
			want = want || tg == m.tag
		}
		if !want {
			continue
		}
		if m.typ != ttlv.TypeBigInteger {
			return nil, m.wrongType(ttlv.TypeBigInteger)
		}
		if _, dup := out[m.tag]; dup {
			return nil, invalidField("%s is given twice", tagName(m.tag))
		}
		if len(m.val) > 0 && m.val[0]&0x80 != 0 {
			return nil, invalidField("%s is negative", tagName(m.tag))
		}
		out[m.tag] = new(big.Int).SetBytes(m.val)
	}
	return out, nil
}

// rsaFromTransparent: a public key needs Modulus and Public Exponent; a
// private key those and P and Q (Go signs with the primes). Private
// Exponent and the CRT values, when given, must be the ones P, Q and the
// public exponent determine.
func rsaFromTransparent(private bool, km item) (any, *opError) {
	v, perr := bigInts(km, kmip14.TagModulus, kmip14.TagPublicExponent, kmip14.TagPrivateExponent, kmip14.TagP,
		kmip14.TagQ, kmip14.TagPrimeExponentP, kmip14.TagPrimeExponentQ, kmip14.TagCRTCoefficient)
	if perr != nil {
		return nil, perr
	}
	n, e := v[kmip14.TagModulus], v[kmip14.TagPublicExponent]
	if n == nil || e == nil {
		return nil, missingData("a Transparent RSA key needs a Modulus and a Public Exponent")
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, invalidField("the Public Exponent must be odd, from 3 to 2^31-1")
	}
	if n.Bit(0) == 0 || n.BitLen() < 1024 {
		return nil, invalidField("the Modulus is not an RSA modulus of 1024 bits or more")
	}
	pub := rsa.PublicKey{N: n, E: int(e.Int64())}
	if !private {
		return &pub, nil
	}
	p, q := v[kmip14.TagP], v[kmip14.TagQ]
	if p == nil || q == nil {
		return nil, missingData("a Transparent RSA Private Key needs P and Q (a Private Exponent alone is not enough to sign)")
	}
	one := big.NewInt(1)
	pm1, qm1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
	lambda := new(big.Int).Div(new(big.Int).Mul(pm1, qm1), new(big.Int).GCD(nil, nil, pm1, qm1))
	d := v[kmip14.TagPrivateExponent]
	if d == nil {
		if d = new(big.Int).ModInverse(e, lambda); d == nil {
			return nil, invalidField("the Public Exponent has no inverse modulo lcm(P-1, Q-1)")
		}
	}
	key := &rsa.PrivateKey{PublicKey: pub, D: d, Primes: []*big.Int{p, q}}
	if err := key.Validate(); err != nil {
		return nil, invalidField("the Transparent RSA Private Key is inconsistent (Modulus, exponents, P and Q): %v", err)
	}
	key.Precompute()
	for _, c := range []struct {
		tag  ttlv.Tag
		want *big.Int
	}{{kmip14.TagPrimeExponentP, key.Precomputed.Dp}, {kmip14.TagPrimeExponentQ, key.Precomputed.Dq},
		{kmip14.TagCRTCoefficient, key.Precomputed.Qinv}} {
		if got := v[c.tag]; got != nil && got.Cmp(c.want) != 0 {
			return nil, invalidField("the %s does not match P, Q and the Private Exponent", tagName(c.tag))
		}
	}
	return key, nil
}

var kmipCurves = map[uint32]elliptic.Curve{
	uint32(kmip14.RecommendedCurveP_256): elliptic.P256(),
	uint32(kmip14.RecommendedCurveP_384): elliptic.P384(),
	uint32(kmip14.RecommendedCurveP_521): elliptic.P521(),
}

// ecFromTransparent: Recommended Curve and D (private) or Q String, an
// uncompressed point (public).
func ecFromTransparent(private bool, km item) (any, *opError) {
	var curve elliptic.Curve
	var q []byte
	hasCurve, hasQ := false, false
	f := km.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		switch m.tag {
		case kmip14.TagRecommendedCurve:
			c, perr := m.enum()
			if perr != nil {
				return nil, perr
			}
			if curve = kmipCurves[c]; curve == nil {
				return nil, notSupported("the curve %s is not supported (P-256, P-384, P-521)", kmip14.RecommendedCurve(c))
			}
			hasCurve = true
		case kmip14.TagQString:
			b, perr := m.bytes()
			if perr != nil {
				return nil, perr
			}
			q, hasQ = b, true
		}
	}
	if !hasCurve {
		return nil, missingData("a Transparent EC key needs a Recommended Curve")
	}
	if !private {
		if !hasQ {
			return nil, missingData("a Transparent EC Public Key needs a Q String")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, q)
		if err != nil {
			return nil, invalidField("the Q String is not an uncompressed point on %s", curve.Params().Name)
		}
		return pub, nil
	}
	v, perr := bigInts(km, kmip14.TagD)
	if perr != nil {
		return nil, perr
	}
	d := v[kmip14.TagD]
	if d == nil {
		return nil, missingData("a Transparent EC Private Key needs D")
	}
	size := (curve.Params().BitSize + 7) / 8
	if d.BitLen() > 8*size {
		return nil, invalidField("D is larger than the order of %s", curve.Params().Name)
	}
	raw := d.FillBytes(make([]byte, size))
	defer crypto.Zero(raw)
	key, err := ecdsa.ParseRawPrivateKey(curve, raw)
	if err != nil {
		return nil, invalidField("D is not a private key on %s (zero or not below the order)", curve.Params().Name)
	}
	if hasQ {
		if pub, err := ecdsa.ParseUncompressedPublicKey(curve, q); err != nil || !key.PublicKey.Equal(pub) {
			return nil, invalidField("the Q String is not the public point of D")
		}
	}
	return key, nil
}
