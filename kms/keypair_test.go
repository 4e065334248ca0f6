package kms_test

import (
	gocrypto "crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/kms"
)

func pair(t *testing.T, svc *kms.Service, alg string, bits int, attrs map[string]string) (*kms.Secret, *kms.Secret) {
	t.Helper()
	priv, pub, err := svc.CreateKeyPair(ctx, creator, kms.KeyPairRequest{Algorithm: alg, BitLength: bits,
		Private: kms.CreateRequest{Name: "k", Attributes: attrs}, Public: kms.CreateRequest{Name: "k.pub"},
		Link: func(toPublic bool, peer string) (string, string) {
			if toPublic {
				return "Link", "pub:" + peer
			}
			return "Link", "priv:" + peer
		}})
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func TestCreateKeyPair(t *testing.T) {
	svc := newService(t)
	for _, c := range []struct {
		alg  string
		bits int
	}{{"rsa", 2048}, {"ec", 256}, {"ec", 384}, {"ec", 521}} {
		priv, pub := pair(t, svc, c.alg, c.bits, nil)
		if priv.Type != kms.Private || pub.Type != kms.Public || priv.BitLength != c.bits || pub.Algorithm != c.alg {
			t.Fatalf("%+v %+v", priv, pub)
		}
		if priv.Attributes["Link"] != "pub:"+pub.ID || pub.Attributes["Link"] != "priv:"+priv.ID {
			t.Fatalf("links: %v %v", priv.Attributes, pub.Attributes)
		}
		_, pp, err := svc.GetPayload(ctx, creator, priv.ID)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(pp)
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		_, up, err := svc.GetPayload(ctx, creator, pub.ID)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ = pem.Decode(up)
		pk, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !pk.(interface{ Equal(gocrypto.PublicKey) bool }).Equal(k.(gocrypto.Signer).Public()) {
			t.Fatal("the public key is not the private key's")
		}
	}
	for _, bad := range []kms.KeyPairRequest{{Algorithm: "rsa", BitLength: 1024}, {Algorithm: "ec", BitLength: 192}, {Algorithm: "dsa", BitLength: 2048}} {
		_, _, err := svc.CreateKeyPair(ctx, creator, bad)
		mustKind(t, err, kms.KindInvalid)
	}
	_, _, err := svc.CreateKeyPair(ctx, observer, kms.KeyPairRequest{Algorithm: "ec", BitLength: 256})
	mustKind(t, err, kms.KindForbidden)
}

func TestSignVerify(t *testing.T) {
	svc := newService(t)
	msg := []byte("a message")
	for _, alg := range []string{"rsa", "ec"} {
		bits := map[string]int{"rsa": 2048, "ec": 256}[alg]
		priv, pub := pair(t, svc, alg, bits, nil)
		for _, padding := range []string{"", "pss"} {
			p := kms.CryptoParams{Padding: padding}
			sig, err := svc.Sign(ctx, creator, priv.ID, p, msg)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := svc.VerifySignature(ctx, creator, pub.ID, p, msg, sig)
			if err != nil || !ok {
				t.Fatalf("%s %s: verify %v %v", alg, padding, ok, err)
			}
			if ok, _ := svc.VerifySignature(ctx, creator, pub.ID, p, []byte("other"), sig); ok {
				t.Fatal("a signature of another message verified")
			}
			// Locally, with the public key the server holds.
			_, up, _ := svc.GetPayload(ctx, creator, pub.ID)
			blk, _ := pem.Decode(up)
			k, _ := x509.ParsePKIXPublicKey(blk.Bytes)
			d := sha256.Sum256(msg)
			var good bool
			switch k := k.(type) {
			case *rsa.PublicKey:
				if padding == "pss" {
					good = rsa.VerifyPSS(k, gocrypto.SHA256, d[:], sig, nil) == nil
				} else {
					good = rsa.VerifyPKCS1v15(k, gocrypto.SHA256, d[:], sig) == nil
				}
			case *ecdsa.PublicKey:
				good = ecdsa.VerifyASN1(k, d[:], sig)
			}
			if !good {
				t.Fatalf("%s %s: the server's signature does not verify locally", alg, padding)
			}
			if alg == "ec" {
				break
			}
		}
		_, err := svc.Sign(ctx, creator, pub.ID, kms.CryptoParams{}, msg)
		mustKind(t, err, kms.KindInvalid)
		_, err = svc.Sign(ctx, other, priv.ID, kms.CryptoParams{}, msg)
		mustKind(t, err, kms.KindForbidden)
	}
}

func TestCryptoRules(t *testing.T) {
	svc := newService(t)
	// Usage mask 4 (Encrypt) only.
	key, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", Mode: "gcm",
		Payload: make([]byte, 32), ContentType: kms.ContentTypeBinary,
		Attributes: map[string]string{kms.AttrUsageMask: "i:4", kms.AttrSensitive: "b:true"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Encrypt(ctx, creator, key.ID, kms.CryptoParams{AAD: []byte("a")}, []byte("plain"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Decrypt(ctx, creator, key.ID, kms.CryptoParams{IV: res.IV, Tag: res.Tag}, res.Data)
	mustKind(t, err, kms.KindUsage)
	_, _, err = svc.GetPayload(ctx, creator, key.ID)
	mustKind(t, err, kms.KindSensitive)
	// Locally: the ciphertext opens with the key.
	a, _ := cipher.NewGCM(must(aes.NewCipher(make([]byte, 32))))
	pt, err := a.Open(nil, res.IV, append(res.Data, res.Tag...), []byte("a"))
	if err != nil || string(pt) != "plain" {
		t.Fatalf("local open: %q %v", pt, err)
	}
	pre, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", Mode: "cbc",
		Payload: make([]byte, 16), ContentType: kms.ContentTypeBinary, State: kms.PreActive})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Encrypt(ctx, creator, pre.ID, kms.CryptoParams{}, []byte("x"))
	mustKind(t, err, kms.KindWrongState)
}

func TestSymmetricModes(t *testing.T) {
	svc := newService(t)
	key, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes",
		Payload: []byte("0123456789abcdef0123456789abcdef"), ContentType: kms.ContentTypeBinary})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"gcm", "cbc", "ctr"} {
		for _, n := range []int{0, 1, 16, 33} {
			msg := make([]byte, n)
			for i := range msg {
				msg[i] = byte(i)
			}
			res, err := svc.Encrypt(ctx, creator, key.ID, kms.CryptoParams{Mode: mode}, msg)
			if err != nil {
				t.Fatal(mode, err)
			}
			back, err := svc.Decrypt(ctx, creator, key.ID, kms.CryptoParams{Mode: mode, IV: res.IV, Tag: res.Tag}, res.Data)
			if err != nil || string(back.Data) != string(msg) {
				t.Fatalf("%s %d: %x %v", mode, n, back, err)
			}
		}
	}
	_, err = svc.Encrypt(ctx, creator, key.ID, kms.CryptoParams{Mode: "xts"}, []byte("x"))
	mustKind(t, err, kms.KindInvalid)
	_, err = svc.Decrypt(ctx, creator, key.ID, kms.CryptoParams{Mode: "cbc", IV: make([]byte, 16)}, make([]byte, 16))
	mustKind(t, err, kms.KindCryptoFailure)
	hk, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "hmacsha256",
		Payload: []byte("k"), ContentType: kms.ContentTypeBinary})
	if err != nil {
		t.Fatal(err)
	}
	mac, err := svc.MAC(ctx, creator, hk.ID, kms.CryptoParams{}, []byte("m"))
	if err != nil || len(mac) != 32 {
		t.Fatal(mac, err)
	}
	if ok, err := svc.VerifyMAC(ctx, creator, hk.ID, kms.CryptoParams{}, []byte("m"), mac); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, _ := svc.VerifyMAC(ctx, creator, hk.ID, kms.CryptoParams{}, []byte("n"), mac); ok {
		t.Fatal("a MAC of another message verified")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAsymmetricOrderMakesRSAContainer(t *testing.T) {
	svc := newService(t)
	o, err := svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderAsymmetric, Algorithm: "RSA", BitLength: 2048, Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.GetContainer(ctx, creator, o.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != kms.ContainerRSA || len(c.Secrets) != 2 || o.SecretID != "" {
		t.Fatalf("order %+v container %+v", o, c)
	}
	for _, ref := range c.Secrets {
		sec, err := svc.GetSecret(ctx, creator, ref.SecretID, kms.View{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]kms.SecretType{"private_key": kms.Private, "public_key": kms.Public}[ref.Name]; sec.Type != want || sec.BitLength != 2048 {
			t.Errorf("%s: %+v", ref.Name, sec)
		}
	}
	_, err = svc.CreateOrder(ctx, creator, kms.OrderRequest{Type: kms.OrderAsymmetric, Algorithm: "rsa", BitLength: 1024})
	mustKind(t, err, kms.KindInvalid)
}

func TestProtectionIsNeverLowered(t *testing.T) {
	svc := newService(t)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes",
		Payload: make([]byte, 16), ContentType: kms.ContentTypeBinary, Attributes: map[string]string{kms.AttrExtractable: "b:false"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.ChangeAttribute(ctx, creator, sec.ID, kms.AttrOp{Kind: kms.AttrSet, Name: kms.AttrExtractable, Value: "b:true"})
	mustKind(t, err, kms.KindForbidden)
	_, err = svc.ChangeAttribute(ctx, creator, sec.ID, kms.AttrOp{Kind: kms.AttrDeleteAll, Name: kms.AttrExtractable})
	mustKind(t, err, kms.KindForbidden)
	// Raising it is fine.
	if _, err = svc.ChangeAttribute(ctx, creator, sec.ID, kms.AttrOp{Kind: kms.AttrSet, Name: kms.AttrSensitive, Value: "b:true"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.GetPayload(ctx, creator, sec.ID)
	mustKind(t, err, kms.KindSensitive)
	// Nor is it copied out by a clone, which would not carry the flags.
	_, err = svc.CloneSecret(ctx, creator, sec.ID, kms.CloneRequest{})
	mustKind(t, err, kms.KindSensitive)
}

// A pair is one durable change; each use is a read on the trail, refused
// ones included.
func TestKeyUseIsAudited(t *testing.T) {
	svc, a := newAudited(t, nil)
	priv, pub, err := svc.CreateKeyPair(ctx, creator, kms.KeyPairRequest{Algorithm: "ec", BitLength: 256})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := svc.Sign(ctx, creator, priv.ID, kms.CryptoParams{}, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.VerifySignature(ctx, other, pub.ID, kms.CryptoParams{}, []byte("m"), sig); err == nil {
		t.Fatal("another project verified with the key")
	}
	if got := a.actions(priv.ID); !slices.Equal(got, []string{"create_key_pair:ok", "sign:ok"}) {
		t.Errorf("private key's trail %v", got)
	}
	if got := a.actions(pub.ID); !slices.Equal(got, []string{"verify:forbidden"}) {
		t.Errorf("public key's trail %v", got)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if d := a.recs[0].Detail; !strings.Contains(d, priv.ID) || !strings.Contains(d, pub.ID) {
		t.Errorf("the pair's record does not name both halves: %q", d)
	}
}
