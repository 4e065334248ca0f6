package kmip

import (
	"context"
	gocrypto "crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"

	"github.com/keywarden/keywarden/kms"
)

// A key pair ordered over REST with a pass_phrase is, over KMIP, the key
// pair as any: Get returns the private key as PKCS#8 (REST alone encrypts
// it with the passphrase) and Sign uses it.
func TestPassphraseOrderOverKMIP(t *testing.T) {
	e := newEnv(t)
	who := kms.Identity{Project: "p1", User: "user-p1", Roles: admin}
	ctx := context.Background()
	o, err := e.svc.CreateOrder(ctx, who, kms.OrderRequest{Type: kms.OrderAsymmetric, Algorithm: "rsa", BitLength: 2048,
		PassPhrase: []byte("open sesame")})
	if err != nil {
		t.Fatal(err)
	}
	cont, err := e.svc.GetContainer(ctx, who, o.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, s := range cont.Secrets {
		ids[s.Name] = s.SecretID
	}
	c := e.dial("p1")
	der, _ := get(c.do(byID(kmip14.OperationGet, ids["private_key"], v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypePKCS_8))).ok(0),
		kmip14.TagPrivateKey, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial).([]byte)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatalf("KMIP Get PKCS#8: %v", err)
	}
	msg := []byte("signed over KMIP")
	sig, _ := get(c.do(byID(kmip14.OperationSign, ids["private_key"], v(kmip14.TagData, msg))).ok(0), kmip14.TagSignatureData).([]byte)
	d := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(&k.(*rsa.PrivateKey).PublicKey, gocrypto.SHA256, d[:], sig); err != nil {
		t.Fatal(err)
	}
	// The passphrase is Secret Data over KMIP.
	pw := get(c.do(byID(kmip14.OperationGet, ids["private_key_passphrase"])).ok(0),
		kmip14.TagSecretData, kmip14.TagKeyBlock, kmip14.TagKeyValue, kmip14.TagKeyMaterial)
	if string(pw.([]byte)) != "open sesame" {
		t.Fatalf("passphrase %q", pw)
	}
}
