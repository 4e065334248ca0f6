// Package token verifies and mints the bearer tokens of the REST API: JWTs
// whose claims carry the caller's project, user and roles (what Keystone's
// token validation would give Barbican).
package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"github.com/keywarden/keywarden/kms"
)

// Claims is the token body.
type Claims struct {
	jwt.RegisteredClaims
	Project string   `json:"project_id"`
	Roles   []string `json:"roles"`
}

// Config says which keys a Verifier trusts. At least one key is required.
type Config struct {
	HMACSecret     []byte   // HS256, for development
	PublicKeyFiles []string // PEM RSA or ECDSA public keys (RS256/ES256), for production
	Issuer         string   // when set, the iss claim must match
	Audience       string   // when set, the aud claim must contain it
	// MaxLifetime bounds how long a token may be valid: exp - iat, or
	// exp - now for a token without iat. Zero: DefaultMaxLifetime.
	MaxLifetime time.Duration
	Leeway      time.Duration
}

// DefaultMaxLifetime is the longest validity a token may have when
// Config.MaxLifetime is not set.
const DefaultMaxLifetime = 24 * time.Hour

// DevIssuer is the iss of the development tokens Mint signs.
const DevIssuer = "keywarden"

// SourcePrefix starts the kms.Identity.Source of every verified token; the
// token's iss follows it, so that the same user name from two issuers is
// two users.
const SourcePrefix = "jwt:"

// Verifier checks tokens. Verified tokens are cached until they expire, so
// the hot path costs a hash and a map lookup, not a signature check.
type Verifier struct {
	hmac    []byte
	pub     []any
	parser  *jwt.Parser
	mu      sync.Mutex
	cache   map[[32]byte]cached
	maxSize int
	maxLife time.Duration
	leeway  time.Duration
	now     func() time.Time
}

type cached struct {
	id  kms.Identity
	exp time.Time
}

// NewVerifier builds a Verifier from cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{hmac: cfg.HMACSecret, cache: map[[32]byte]cached{}, maxSize: 100000,
		maxLife: cfg.MaxLifetime, leeway: cfg.Leeway, now: time.Now}
	if v.maxLife == 0 {
		v.maxLife = DefaultMaxLifetime
	}
	if v.maxLife < 0 {
		return nil, errors.New("token: the maximum lifetime must be positive")
	}
	for _, f := range cfg.PublicKeyFiles {
		k, err := loadPublicKey(f)
		if err != nil {
			return nil, err
		}
		v.pub = append(v.pub, k)
	}
	if len(v.hmac) == 0 && len(v.pub) == 0 {
		return nil, errors.New("token: no verification key configured")
	}
	methods := []string{}
	if len(v.hmac) > 0 {
		methods = append(methods, "HS256")
	}
	for _, k := range v.pub {
		switch k.(type) {
		case *rsa.PublicKey:
			methods = append(methods, "RS256")
		case *ecdsa.PublicKey:
			methods = append(methods, "ES256")
		}
	}
	// iat, when present, must not be in the future: the lifetime is
	// measured from it.
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway), jwt.WithTimeFunc(func() time.Time { return v.now() })}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func loadPublicKey(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("token: public key %s: no PEM block", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token: public key %s: %w", path, err)
	}
	switch k.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("token: public key %s: only RSA and ECDSA keys are supported", path)
}

// ErrInvalid is returned for every bad token; the reason is in the message
// but never the token itself.
var ErrInvalid = errors.New("invalid token")

// Verify returns the identity a token carries.
func (v *Verifier) Verify(raw string) (kms.Identity, error) {
	sum := tokenSum(raw)
	now := v.now()
	v.mu.Lock()
	c, ok := v.cache[sum]
	v.mu.Unlock()
	if ok && now.Before(c.exp) {
		return c.id, nil
	}
	var claims Claims
	_, err := v.parser.ParseWithClaims(raw, &claims, v.key)
	if err != nil {
		return kms.Identity{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if claims.Project == "" {
		return kms.Identity{}, fmt.Errorf("%w: no project_id claim", ErrInvalid)
	}
	if err := v.checkLifetime(&claims, now); err != nil {
		return kms.Identity{}, err
	}
	id := kms.Identity{Project: claims.Project, User: claims.Subject, Roles: claims.Roles,
		Source: SourcePrefix + claims.Issuer}
	v.mu.Lock()
	if len(v.cache) >= v.maxSize {
		clear(v.cache) // crude but bounded; refilled by the next verifications
	}
	v.cache[sum] = cached{id: id, exp: claims.ExpiresAt.Time}
	v.mu.Unlock()
	return id, nil
}

// tokenSum is the cache key of a token: its SHA-256, so that the cache
// holds no usable token. It hashes the string's own bytes (Sum256 only
// reads them) instead of a []byte copy per request.
func tokenSum(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// Authenticate is Verify, as barbican.Authenticator.
func (v *Verifier) Authenticate(_ context.Context, raw string) (kms.Identity, error) {
	return v.Verify(raw)
}

// IsJWT reports whether raw has a JWT's form: three base64url segments, the
// first of which decodes to a JSON header naming an algorithm. It says
// nothing of validity; it tells a JWT from an opaque token (Keystone's fernet
// tokens have no dot).
func IsJWT(raw string) bool {
	head, rest, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(rest, ".") != 1 || len(head) > 1024 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(head, "="))
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(b, &h) == nil && h.Alg != ""
}

// checkLifetime refuses a token valid for longer than the maximum: exp -
// iat when the token says when it was issued (the parser has checked that
// iat is not in the future), else exp - now. A stolen token is then good
// for at most that long, whatever its signer chose.
func (v *Verifier) checkLifetime(c *Claims, now time.Time) error {
	from := now
	if c.IssuedAt != nil {
		from = c.IssuedAt.Time
	}
	if life := c.ExpiresAt.Sub(from); life > v.maxLife+v.leeway {
		return fmt.Errorf("%w: valid for %s, longer than the maximum token lifetime %s",
			ErrInvalid, life.Round(time.Second), v.maxLife)
	}
	return nil
}

func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		return v.hmac, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodECDSA:
		ks := jwt.VerificationKeySet{}
		for _, k := range v.pub {
			ks.Keys = append(ks.Keys, k)
		}
		return ks, nil
	}
	return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
}

// Mint signs a development token (HS256) for id, valid for ttl, issued by
// DevIssuer.
func Mint(secret []byte, id kms.Identity, ttl time.Duration) (string, error) {
	return MintFor(secret, id, ttl, DevIssuer, "")
}

// MintFor is Mint with the iss and (when not empty) aud a server configured
// with auth.jwt.issuer and audience requires.
func MintFor(secret []byte, id kms.Identity, ttl time.Duration, issuer, audience string) (string, error) {
	now := time.Now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: id.User, IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), Issuer: issuer,
		},
		Project: id.Project, Roles: id.Roles,
	}
	if audience != "" {
		c.Audience = jwt.ClaimStrings{audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
