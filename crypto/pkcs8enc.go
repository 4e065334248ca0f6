package crypto

import (
	gocrypto "crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"

	"github.com/youmark/pkcs8"
)

// EncryptedPKCS8PEMType is the PEM block of a passphrase-encrypted
// PKCS#8 private key (RFC 5958 EncryptedPrivateKeyInfo).
const EncryptedPKCS8PEMType = "ENCRYPTED PRIVATE KEY"

// pkcs8Opts: PBES2 with PBKDF2-HMAC-SHA256 (600,000 iterations, OWASP's
// figure for it; about 0.13 s here) and AES-256-CBC, what OpenSSL and
// Python's cryptography read. github.com/youmark/pkcs8 does the encoding;
// no cryptography is written here.
var pkcs8Opts = &pkcs8.Opts{
	Cipher:  pkcs8.AES256CBC,
	KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 600_000, HMACHash: gocrypto.SHA256},
}

// EncryptPKCS8PEM encrypts a PEM private key (PKCS#8, PKCS#1 or SEC 1)
// with a passphrase, as Barbican returns a key pair ordered with one: an
// "ENCRYPTED PRIVATE KEY" PEM. A fresh salt and IV each call.
func EncryptPKCS8PEM(keyPEM, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("crypto: an empty passphrase")
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		return nil, errors.New("crypto: the private key is not PEM")
	}
	defer Zero(blk.Bytes)
	var key any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, errors.New("crypto: a " + blk.Type + " PEM block is not a private key")
	}
	if err != nil {
		return nil, err
	}
	der, err := pkcs8.MarshalPrivateKey(key, passphrase, pkcs8Opts)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: EncryptedPKCS8PEMType, Bytes: der}), nil
}

// DecryptPKCS8PEM is the inverse, for tests and tools: the private key of
// an "ENCRYPTED PRIVATE KEY" PEM.
func DecryptPKCS8PEM(encPEM, passphrase []byte) (any, error) {
	blk, _ := pem.Decode(encPEM)
	if blk == nil || blk.Type != EncryptedPKCS8PEMType {
		return nil, errors.New("crypto: not an " + EncryptedPKCS8PEMType + " PEM")
	}
	key, _, err := pkcs8.ParsePrivateKey(blk.Bytes, passphrase)
	return key, err
}
