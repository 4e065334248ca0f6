package kms

import (
	"context"
	gocrypto "crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"strings"

	"github.com/keywarden/keywarden/crypto"
)

// Cryptographic services over stored keys: the key never leaves the
// server. They change no state, so they are audited like reads (best
// effort), one record per use.

// CryptoParams are the parameters of one operation (KMIP Cryptographic
// Parameters and the request's IV, tag and additional data). Zero values
// take the defaults named on each field.
type CryptoParams struct {
	// Mode is the block cipher mode of a symmetric key: "gcm", "cbc",
	// "ctr" (default: the key's Mode).
	Mode string
	// Padding: "pkcs5" (CBC, default) or "none"; "oaep" (RSA encryption,
	// default) or "pkcs1v15"; "pss" or "pkcs1v15" (RSA signatures,
	// default pkcs1v15).
	Padding string
	// Hash of signatures (default SHA-256; ECDSA: the curve's size), of
	// OAEP (default SHA-1, as RFC 8017) and of HMAC (default: the key's
	// algorithm, e.g. hmacsha256).
	Hash gocrypto.Hash
	// Algorithm, when the request names one, must agree with the key's
	// ("aes", "rsa", "ec", "hmacsha256" …); it selects HMAC's hash.
	Algorithm string
	IV        []byte // IV, counter or nonce; Encrypt makes one when empty
	TagLen    int    // GCM tag length in bytes (default 16)
	AAD       []byte // GCM additional authenticated data
	Tag       []byte // GCM tag to check (Decrypt)
	// Digested says Sign/Verify data is already the digest.
	Digested bool
	// MGFHash is OAEP's MGF1 hash (default: Hash); Label is OAEP's label
	// (KMIP's P Source).
	MGFHash gocrypto.Hash
	Label   []byte
	// SaltLen is an RSA-PSS salt length in bytes (default: the hash's
	// size when signing, any when verifying).
	SaltLen int
	// KeyDefaults reads the key's own parameters (KMIP's Cryptographic
	// Parameters attribute, stored by the adapter) from its attributes:
	// they fill what the request leaves out.
	KeyDefaults func(attrs map[string]string) CryptoParams
}

// withKeyDefaults fills the fields p leaves empty from the key's own
// parameters; the request's IV, tag and additional data stay its own.
func (p CryptoParams) withKeyDefaults(sec *Secret) CryptoParams {
	if p.KeyDefaults == nil {
		return p
	}
	d := p.KeyDefaults(sec.Attributes)
	p.KeyDefaults = nil
	if p.Mode == "" {
		p.Mode = d.Mode
	}
	if p.Padding == "" {
		p.Padding = d.Padding
	}
	if p.Hash == 0 {
		p.Hash = d.Hash
	}
	if p.Algorithm == "" {
		p.Algorithm = d.Algorithm
	}
	if p.TagLen == 0 {
		p.TagLen = d.TagLen
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.MGFHash == 0 {
		p.MGFHash = d.MGFHash
	}
	if p.Label == nil {
		p.Label = d.Label
	}
	return p
}

// useKeyParams is useKey with the key's default parameters applied.
func (s *Service) useKeyParams(ctx context.Context, who Identity, id string, use KeyUse, p *CryptoParams) (*Secret, []byte, error) {
	sec, key, err := s.useKey(ctx, who, id, use)
	if err == nil {
		*p = p.withKeyDefaults(sec)
	}
	return sec, key, err
}

// CryptoResult is the output of Encrypt or Decrypt.
type CryptoResult struct {
	Data []byte
	IV   []byte // the IV the server chose, when the request gave none
	Tag  []byte // the GCM tag (Encrypt)
}

// Encrypt encrypts data with a symmetric key or an RSA key.
func (s *Service) Encrypt(ctx context.Context, who Identity, id string, p CryptoParams, data []byte) (res *CryptoResult, err error) {
	defer func() { s.record(ctx, who, "encrypt", id, err) }()
	sec, key, err := s.useKeyParams(ctx, who, id, UseEncrypt, &p)
	if err != nil {
		return nil, err
	}
	defer crypto.Zero(key)
	if err := s.spendUsage(ctx, who, sec, len(data)); err != nil {
		return nil, err
	}
	if sec.Type == Symmetric {
		return symmetric(sec, key, p, data, true)
	}
	pub, err := asymmetricKey(sec, key)
	if err != nil {
		return nil, err
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, Invalid("only RSA keys encrypt; secret %s is %s", sec.ID, sec.Algorithm)
	}
	var out []byte
	switch pad(p.Padding, "oaep") {
	case "oaep":
		out, err = rsa.EncryptOAEPWithOptions(rand.Reader, rk, data, oaep(p))
	case "pkcs1v15":
		// The KMIP profiles list it; OAEP is the default (docs/KMIP.md).
		//lint:ignore SA1019 served for KMIP clients that ask for it by name
		out, err = rsa.EncryptPKCS1v15(rand.Reader, rk, data)
	default:
		return nil, Invalid("RSA encryption pads with oaep or pkcs1v15, not %s", p.Padding)
	}
	if err != nil {
		return nil, Invalid("RSA encryption: %v", err)
	}
	return &CryptoResult{Data: out}, nil
}

// Decrypt decrypts data with a symmetric key or an RSA private key. The
// caller zeroes the plaintext.
func (s *Service) Decrypt(ctx context.Context, who Identity, id string, p CryptoParams, data []byte) (res *CryptoResult, err error) {
	defer func() { s.record(ctx, who, "decrypt", id, err) }()
	sec, key, err := s.useKeyParams(ctx, who, id, UseDecrypt, &p)
	if err != nil {
		return nil, err
	}
	defer crypto.Zero(key)
	if err := s.spendUsage(ctx, who, sec, len(data)); err != nil {
		return nil, err
	}
	if sec.Type == Symmetric {
		return symmetric(sec, key, p, data, false)
	}
	if sec.Type != Private {
		return nil, Invalid("a %s key cannot decrypt", sec.Type)
	}
	k, err := privateKey(key)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, Invalid("only RSA keys decrypt; secret %s is %s", sec.ID, sec.Algorithm)
	}
	var out []byte
	switch pad(p.Padding, "oaep") {
	case "oaep":
		out, err = rk.Decrypt(nil, data, oaep(p))
	case "pkcs1v15":
		// A padding oracle by nature: served because the profiles list it,
		// to callers whose usage mask allows Decrypt (docs/KMIP.md).
		//lint:ignore SA1019 served for KMIP clients that ask for it by name
		out, err = rsa.DecryptPKCS1v15(nil, rk, data)
	default:
		return nil, Invalid("RSA decryption pads with oaep or pkcs1v15, not %s", p.Padding)
	}
	if err != nil {
		return nil, CryptoFailure("decryption failed")
	}
	return &CryptoResult{Data: out}, nil
}

// Sign signs data (or its digest, p.Digested) with a private key.
func (s *Service) Sign(ctx context.Context, who Identity, id string, p CryptoParams, data []byte) (sig []byte, err error) {
	defer func() { s.record(ctx, who, "sign", id, err) }()
	sec, key, err := s.useKeyParams(ctx, who, id, UseSign, &p)
	if err != nil {
		return nil, err
	}
	defer crypto.Zero(key)
	if sec.Type != Private {
		return nil, Invalid("only a private key signs, not a %s one", sec.Type)
	}
	k, err := privateKey(key)
	if err != nil {
		return nil, err
	}
	h, digest, err := digestFor(k, p, data)
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		switch pad(p.Padding, "pkcs1v15") {
		case "pkcs1v15":
			sig, err = rsa.SignPKCS1v15(nil, k, h, digest)
		case "pss":
			sig, err = rsa.SignPSS(rand.Reader, k, h, digest, &rsa.PSSOptions{SaltLength: saltOr(p.SaltLen, rsa.PSSSaltLengthEqualsHash)})
		default:
			return nil, Invalid("RSA signatures pad with pkcs1v15 or pss, not %s", p.Padding)
		}
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, k, digest)
	default:
		return nil, Invalid("keys of this algorithm do not sign here")
	}
	if err != nil {
		return nil, CryptoFailure("signing failed: %v", err)
	}
	return sig, nil
}

// VerifySignature checks a signature with a public key (or the public half
// of a private key). A signature that does not verify is no error: valid
// is false.
func (s *Service) VerifySignature(ctx context.Context, who Identity, id string, p CryptoParams, data, sig []byte) (valid bool, err error) {
	defer func() { s.record(ctx, who, "verify", id, err) }()
	sec, key, err := s.useKeyParams(ctx, who, id, UseVerify, &p)
	if err != nil {
		return false, err
	}
	defer crypto.Zero(key)
	pub, err := asymmetricKey(sec, key)
	if err != nil {
		return false, err
	}
	h, digest, err := digestFor(pub, p, data)
	if err != nil {
		return false, err
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch pad(p.Padding, "pkcs1v15") {
		case "pkcs1v15":
			return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil, nil
		case "pss":
			return rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: saltOr(p.SaltLen, rsa.PSSSaltLengthAuto)}) == nil, nil
		}
		return false, Invalid("RSA signatures pad with pkcs1v15 or pss, not %s", p.Padding)
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig), nil
	}
	return false, Invalid("keys of this algorithm do not verify here")
}

// MAC computes an HMAC of data with a symmetric key.
func (s *Service) MAC(ctx context.Context, who Identity, id string, p CryptoParams, data []byte) (mac []byte, err error) {
	defer func() { s.record(ctx, who, "mac", id, err) }()
	sec, key, err := s.useKeyParams(ctx, who, id, UseMACGenerate, &p)
	if err != nil {
		return nil, err
	}
	defer crypto.Zero(key)
	if err := s.spendUsage(ctx, who, sec, len(data)); err != nil {
		return nil, err
	}
	return hmacOf(sec, key, p, data)
}

// VerifyMAC checks an HMAC in constant time; a mismatch is valid false.
func (s *Service) VerifyMAC(ctx context.Context, who Identity, id string, p CryptoParams, data, mac []byte) (valid bool, err error) {
	defer func() { s.record(ctx, who, "mac_verify", id, err) }()
	sec, key, err := s.useKeyParams(ctx, who, id, UseMACVerify, &p)
	if err != nil {
		return false, err
	}
	defer crypto.Zero(key)
	if err := s.spendUsage(ctx, who, sec, len(data)); err != nil {
		return false, err
	}
	want, err := hmacOf(sec, key, p, data)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(want, mac) == 1, nil
}

// HMACHashes maps HMAC algorithm names (normalized: "hmacsha256") to their
// hash; SHA-1 and the SHA-2 family are served.
var HMACHashes = map[string]gocrypto.Hash{
	"hmacsha1": gocrypto.SHA1, "hmacsha224": gocrypto.SHA224, "hmacsha256": gocrypto.SHA256,
	"hmacsha384": gocrypto.SHA384, "hmacsha512": gocrypto.SHA512,
}

func hmacOf(sec *Secret, key []byte, p CryptoParams, data []byte) ([]byte, error) {
	if sec.Type != Symmetric {
		return nil, Invalid("a MAC needs a symmetric key, not a %s one", sec.Type)
	}
	h := p.Hash
	if alg := normAlgorithm(p.Algorithm); alg != "" {
		var ok bool
		if h, ok = HMACHashes[alg]; !ok {
			return nil, Invalid("MAC algorithm %s is not served (HMAC-SHA1/224/256/384/512 are)", p.Algorithm)
		}
	}
	if h == 0 {
		h = HMACHashes[normAlgorithm(sec.Algorithm)]
	}
	if h == 0 {
		return nil, Invalid("no HMAC algorithm: name one, or give the key an HMAC algorithm")
	}
	m := hmac.New(h.New, key)
	m.Write(data)
	return m.Sum(nil), nil
}

// asymmetricKey is the public key of an asymmetric secret.
func asymmetricKey(sec *Secret, key []byte) (any, error) {
	if sec.Type != Public && sec.Type != Private {
		return nil, Invalid("a %s key is not asymmetric", sec.Type)
	}
	return publicKey(sec, key)
}

// digestFor hashes data for a signature by key k (unless already digested).
func digestFor(k any, p CryptoParams, data []byte) (gocrypto.Hash, []byte, error) {
	h := p.Hash
	if h == 0 {
		h = gocrypto.SHA256
		if ek, ok := k.(interface{ Public() gocrypto.PublicKey }); ok {
			k = ek.Public()
		}
		if ek, ok := k.(*ecdsa.PublicKey); ok {
			switch ek.Curve.Params().BitSize {
			case 384:
				h = gocrypto.SHA384
			case 521:
				h = gocrypto.SHA512
			}
		}
	}
	if !h.Available() {
		return 0, nil, Invalid("hash %v is not served", h)
	}
	if p.Digested {
		if len(data) != h.Size() {
			return 0, nil, Invalid("a %v digest is %d bytes, not %d", h, h.Size(), len(data))
		}
		return h, data, nil
	}
	d := h.New()
	d.Write(data)
	return h, d.Sum(nil), nil
}

func pad(p, def string) string {
	if p == "" {
		return def
	}
	return strings.ToLower(p)
}

func oaep(p CryptoParams) *rsa.OAEPOptions {
	h := hashOr(p.Hash, gocrypto.SHA1)
	return &rsa.OAEPOptions{Hash: h, MGFHash: hashOr(p.MGFHash, h), Label: p.Label}
}

func saltOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

func hashOr(h, def gocrypto.Hash) gocrypto.Hash {
	if h == 0 {
		return def
	}
	return h
}

var algSeparators = strings.NewReplacer("-", "", "_", "", " ", "")

// normAlgorithm spells an algorithm name as kmip stores it: "HMAC-SHA256"
// → "hmacsha256".
func normAlgorithm(s string) string { return algSeparators.Replace(strings.ToLower(s)) }
