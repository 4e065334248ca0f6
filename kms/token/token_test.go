package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/keywarden/keywarden/kms"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestMintVerify(t *testing.T) {
	v, err := NewVerifier(Config{HMACSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Mint(secret, kms.Identity{Project: "p1", User: "u1", Roles: []string{"admin", "creator"}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // second call is served from the cache
		id, err := v.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if id.Project != "p1" || id.User != "u1" || len(id.Roles) != 2 || !id.Has("creator") {
			t.Fatalf("identity %+v", id)
		}
	}
}

func TestRejects(t *testing.T) {
	v, _ := NewVerifier(Config{HMACSecret: secret})
	expired, _ := Mint(secret, kms.Identity{Project: "p1"}, -time.Minute)
	forged, _ := Mint([]byte("another-secret-another-secret-xx"), kms.Identity{Project: "p1"}, time.Minute)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Project: "p1"}).SignedString(secret)
	noProject, _ := Mint(secret, kms.Identity{}, time.Minute)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Project: "p1",
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, tok := range map[string]string{"expired": expired, "forged": forged, "no exp": noExp,
		"no project": noProject, "alg none": none, "garbage": "not.a.token", "empty": ""} {
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
}

func TestES256PublicKey(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	path := filepath.Join(t.TempDir(), "pub.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	v, err := NewVerifier(Config{PublicKeyFiles: []string{path}, Issuer: "idp"})
	if err != nil {
		t.Fatal(err)
	}
	claims := Claims{Project: "p9", RegisteredClaims: jwt.RegisteredClaims{Issuer: "idp", Subject: "svc",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(priv)
	if id, err := v.Verify(tok); err != nil || id.Project != "p9" {
		t.Fatalf("%+v %v", id, err)
	}
	claims.Issuer = "someone-else"
	bad, _ := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(priv)
	if _, err := v.Verify(bad); err == nil {
		t.Fatal("wrong issuer accepted")
	}
	// An HS256 token must not be accepted by a verifier without an HMAC key.
	hs, _ := Mint(secret, kms.Identity{Project: "p9"}, time.Minute)
	if _, err := v.Verify(hs); err == nil {
		t.Fatal("HS256 accepted by a public-key-only verifier")
	}
}

func TestNoKeys(t *testing.T) {
	if _, err := NewVerifier(Config{}); err == nil {
		t.Fatal("verifier without keys accepted")
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	v, _ := NewVerifier(Config{HMACSecret: secret})
	tok, _ := Mint(secret, kms.Identity{Project: "p1", Roles: []string{"admin"}}, time.Hour)
	for b.Loop() {
		v.Verify(tok)
	}
}

func TestIsJWT(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	jwtTok, err := Mint(secret, kms.Identity{Project: "p"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]bool{
		jwtTok: true,
		// A Keystone fernet token: base64url, no dot.
		"gAAAAABnZ3Ew8V1b6mJ4yT0-kHc2ZdR0yM5Yv2uB3pQ9xW_ZL7sE1aK8cN4oR6tU3iO0pA2sD5fG7hJ9kL1zX3cV5bN7mQ": false,
		"a.b.c":                              false, // three segments, no JWT header
		"eyJhbGciOiJIUzI1NiJ9.e30":           false, // two segments
		"eyJhbGciOiJIUzI1NiJ9.e30.sig.extra": false,
		"eyJ0eXAiOiJKV1QifQ.e30.sig":         false, // a header without alg
		"":                                   false,
	} {
		if got := IsJWT(raw); got != want {
			t.Errorf("IsJWT(%.30q) = %v, want %v", raw, got, want)
		}
	}
}
