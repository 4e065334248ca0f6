package kmip_test

import (
	gocrypto "crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
)

// Go's own crypto, to check what the server computed.

// verifyLocally checks sig over msg (SHA-256) with a DER public key
// (SubjectPublicKeyInfo or PKCS#1): RSA PSS or PKCS#1 v1.5, or ECDSA.
func verifyLocally(der, msg, sig []byte, pss bool) error {
	var pub any
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		if pub, err = x509.ParsePKCS1PublicKey(der); err != nil {
			return fmt.Errorf("public key: %v", err)
		}
	}
	d := sha256.Sum256(msg)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if pss {
			return rsa.VerifyPSS(k, gocrypto.SHA256, d[:], sig, nil)
		}
		return rsa.VerifyPKCS1v15(k, gocrypto.SHA256, d[:], sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, d[:], sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unexpected key %T", pub)
}

func cbcDecrypt(key, iv, ct []byte) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if len(ct) == 0 || len(ct)%16 != 0 || len(iv) != 16 {
		return nil, errors.New("bad CBC lengths")
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, ct)
	n := int(out[len(out)-1])
	if n == 0 || n > 16 {
		return nil, errors.New("bad padding")
	}
	return out[:len(out)-n], nil
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
