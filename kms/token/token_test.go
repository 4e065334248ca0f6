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
	"strings"
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

// sign signs claims for project p1 with the test secret.
func sign(t *testing.T, c Claims) string {
	t.Helper()
	c.Project = "p1"
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func at(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(time.Now().Add(d)) }

func TestMaxLifetime(t *testing.T) {
	v, err := NewVerifier(Config{HMACSecret: secret, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		c  jwt.RegisteredClaims
		ok bool
	}{
		"1h":                     {jwt.RegisteredClaims{IssuedAt: at(0), ExpiresAt: at(time.Hour)}, true},
		"24h":                    {jwt.RegisteredClaims{IssuedAt: at(0), ExpiresAt: at(24 * time.Hour)}, true},
		"10 years":               {jwt.RegisteredClaims{IssuedAt: at(0), ExpiresAt: at(10 * 365 * 24 * time.Hour)}, false},
		"25h, issued 2h ago":     {jwt.RegisteredClaims{IssuedAt: at(-2 * time.Hour), ExpiresAt: at(23 * time.Hour)}, false},
		"no iat, 23h left":       {jwt.RegisteredClaims{ExpiresAt: at(23 * time.Hour)}, true},
		"no iat, 25h left":       {jwt.RegisteredClaims{ExpiresAt: at(25 * time.Hour)}, false},
		"iat in the future":      {jwt.RegisteredClaims{IssuedAt: at(10 * 365 * 24 * time.Hour), ExpiresAt: at(10*365*24*time.Hour + time.Hour)}, false},
		"iat 10s in the future":  {jwt.RegisteredClaims{IssuedAt: at(10 * time.Second), ExpiresAt: at(time.Hour)}, true},
		"issued long ago, 1h on": {jwt.RegisteredClaims{IssuedAt: at(-48 * time.Hour), ExpiresAt: at(time.Hour)}, false},
	} {
		_, err := v.Verify(sign(t, Claims{RegisteredClaims: tc.c}))
		if tc.ok && err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	// Configured: a 2h token passes 3h and fails 1h.
	tok := sign(t, Claims{RegisteredClaims: jwt.RegisteredClaims{IssuedAt: at(0), ExpiresAt: at(2 * time.Hour)}})
	long, _ := NewVerifier(Config{HMACSecret: secret, MaxLifetime: 3 * time.Hour})
	short, _ := NewVerifier(Config{HMACSecret: secret, MaxLifetime: time.Hour})
	if _, err := long.Verify(tok); err != nil {
		t.Errorf("max 3h refused a 2h token: %v", err)
	}
	if _, err := short.Verify(tok); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "lifetime") {
		t.Errorf("max 1h: want a lifetime refusal, got %v", err)
	}
	if _, err := NewVerifier(Config{HMACSecret: secret, MaxLifetime: -time.Hour}); err == nil {
		t.Error("negative maximum lifetime accepted")
	}
}

func TestIssuerAudience(t *testing.T) {
	v, err := NewVerifier(Config{HMACSecret: secret, Issuer: "https://idp.example", Audience: "keywarden"})
	if err != nil {
		t.Fatal(err)
	}
	id := kms.Identity{Project: "p1", User: "ann"}
	good, _ := MintFor(secret, id, time.Hour, "https://idp.example", "keywarden")
	got, err := v.Verify(good)
	if err != nil || got.User != "ann" || got.Source != "jwt:https://idp.example" {
		t.Fatalf("%+v %v", got, err)
	}
	for name, tok := range map[string]string{
		"wrong iss": must(MintFor(secret, id, time.Hour, "https://evil.example", "keywarden")),
		"no iss":    must(MintFor(secret, id, time.Hour, "", "keywarden")),
		"wrong aud": must(MintFor(secret, id, time.Hour, "https://idp.example", "another-service")),
		"no aud":    must(MintFor(secret, id, time.Hour, "https://idp.example", "")),
	} {
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
}

// The same user name from two issuers is two identities.
func TestSourceIsTheIssuer(t *testing.T) {
	v, _ := NewVerifier(Config{HMACSecret: secret})
	a, _ := v.Verify(must(MintFor(secret, kms.Identity{Project: "p1", User: "bob"}, time.Hour, "idp-a", "")))
	b, _ := v.Verify(must(Mint(secret, kms.Identity{Project: "p1", User: "bob"}, time.Hour)))
	if a.Source != "jwt:idp-a" || b.Source != "jwt:"+DevIssuer || a.User != b.User {
		t.Fatalf("sources %q %q", a.Source, b.Source)
	}
}

func must(tok string, err error) string {
	if err != nil {
		panic(err)
	}
	return tok
}
