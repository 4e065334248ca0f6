package kmip_test

import (
	"bytes"
	"context"
	gocrypto "crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// TestOVHCrypto: ovh/kmip-go's CreateKeyPair, its crypto.Signer over the
// server's Sign, Signature Verify, and AES-GCM Encrypt/Decrypt; each result
// checked with Go's crypto.
func TestOVHCrypto(t *testing.T) {
	s := startServer(t)
	dir := s.clientFiles(t, "ovhproj", "carol", "admin")
	c := ovhClient(t, s, dir)
	ctx := context.Background()
	for _, alg := range []string{"rsa", "ecdsa"} {
		ex := c.CreateKeyPair()
		sign, verify := ovh.CryptographicUsageSign, ovh.CryptographicUsageVerify
		// The builder fills one request: call RSA or ECDSA, not both.
		var r *payloads.CreateKeyPairResponsePayload
		var err error
		if alg == "ecdsa" {
			r, err = ex.ECDSA(ovh.RecommendedCurveP_256, sign, verify).ExecContext(ctx)
		} else {
			r, err = ex.RSA(2048, sign, verify).ExecContext(ctx)
		}
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		for _, id := range []string{r.PrivateKeyUniqueIdentifier, r.PublicKeyUniqueIdentifier} {
			if _, err := c.Activate(id).ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// The client finds the public key through the private key's Link.
		signer, err := c.Signer(ctx, r.PrivateKeyUniqueIdentifier, "")
		if err != nil {
			t.Fatalf("%s: Signer: %v", alg, err)
		}
		digest := sha256.Sum256([]byte("ovh message"))
		opts := []gocrypto.SignerOpts{gocrypto.SHA256}
		if alg == "rsa" {
			opts = append(opts, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: gocrypto.SHA256})
		}
		for _, o := range opts {
			sig, err := signer.Sign(rand.Reader, digest[:], o)
			if err != nil {
				t.Fatalf("%s: Sign: %v", alg, err)
			}
			var good bool
			switch k := signer.Public().(type) {
			case *rsa.PublicKey:
				if pss, ok := o.(*rsa.PSSOptions); ok {
					good = rsa.VerifyPSS(k, gocrypto.SHA256, digest[:], sig, pss) == nil
				} else {
					good = rsa.VerifyPKCS1v15(k, gocrypto.SHA256, digest[:], sig) == nil
				}
			case *ecdsa.PublicKey:
				good = ecdsa.VerifyASN1(k, digest[:], sig)
			}
			if !good {
				t.Fatalf("%s %T: the server's signature does not verify with Go", alg, o)
			}
			params := ovh.CryptographicParameters{HashingAlgorithm: ovh.HashingAlgorithmSHA_256}
			if _, ok := o.(*rsa.PSSOptions); ok {
				params.PaddingMethod = ovh.PaddingMethodPSS
			}
			v, err := c.SignatureVerify(r.PublicKeyUniqueIdentifier).WithCryptographicParameters(params).
				DigestedData(digest[:]).Signature(sig).ExecContext(ctx)
			if err != nil || v.ValidityIndicator != ovh.ValidityIndicatorValid {
				t.Fatalf("%s: Signature Verify %v %v", alg, v, err)
			}
		}
	}

	// AES-GCM: the server encrypts, Go decrypts, and the other way round.
	key := bytes.Repeat([]byte{9}, 32)
	reg, err := c.Register().SymmetricKey(ovh.CryptographicAlgorithmAES, ovh.CryptographicUsageEncrypt|ovh.CryptographicUsageDecrypt, key).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Activate(reg.UniqueIdentifier).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	gcm := ovh.CryptographicParameters{CryptographicAlgorithm: ovh.CryptographicAlgorithmAES, BlockCipherMode: ovh.BlockCipherModeGCM}
	plain := bytes.Repeat([]byte("ovh "), 1024)
	enc, err := c.Encrypt(reg.UniqueIdentifier).WithCryptographicParameters(gcm).WithAAD([]byte("aad")).Data(plain).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(block)
	got, err := a.Open(nil, enc.IVCounterNonce, append(bytes.Clone(enc.Data), enc.AuthenticatedEncryptionTag...), []byte("aad"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("the server's GCM ciphertext does not open with Go: %v", err)
	}
	nonce := bytes.Repeat([]byte{1}, 12)
	sealed := a.Seal(nil, nonce, []byte("from Go"), nil)
	dec, err := c.Decrypt(reg.UniqueIdentifier).WithCryptographicParameters(gcm).WithIvCounterNonce(nonce).
		WithAuthTag(sealed[len(sealed)-16:]).Data(sealed[:len(sealed)-16]).ExecContext(ctx)
	if err != nil || string(dec.Data) != "from Go" {
		t.Fatalf("the server cannot open Go's GCM ciphertext: %q %v", dec, err)
	}
}
