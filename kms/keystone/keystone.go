// Package keystone validates OpenStack Keystone tokens the way
// keystonemiddleware's auth_token does for Barbican: Keywarden signs in as
// its own service user, then asks Keystone v3 about each token it is shown
// (GET /v3/auth/tokens). Valid tokens are cached for a configurable time, and
// the cache follows Keystone's revocation events (GET /v3/OS-REVOKE/events,
// polled every few seconds), so a revoked token stops working within seconds
// even while cached. Concurrent first uses of one token make one Keystone
// call. When Keystone cannot be reached, tokens not in the cache get a
// kms.Unavailable error (503), never a refusal.
package keystone

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/keywarden/keywarden/kms"
)

// Defaults, as keystonemiddleware's where it has them.
const (
	DefaultCacheTime = 300 * time.Second
	DefaultPollEvery = 2 * time.Second
	DefaultTimeout   = 5 * time.Second
	// renewBefore: the service token is renewed this long before it expires.
	renewBefore = 2 * time.Minute
	// maxTokenLen bounds what is sent to Keystone; fernet tokens are ~200
	// bytes, JWS tokens under 1 KiB.
	maxTokenLen = 8192
)

// Config is the service user and the cache policy, shaped like
// keystonemiddleware's [keystone_authtoken].
type Config struct {
	AuthURL           string // e.g. http://keystone:5000/v3 (/v3 is added when missing)
	Username          string
	Password          string
	ProjectName       string
	UserDomainName    string // default "Default"
	ProjectDomainName string // default "Default"
	// CacheTime is how long a validated token is trusted without asking
	// Keystone again (never past its expiry); 0 turns the cache off.
	CacheTime time.Duration
	// PollEvery is the revocation events poll period (default 2 s).
	PollEvery time.Duration
	// Timeout bounds each Keystone request (default 5 s).
	Timeout time.Duration
	Logger  *slog.Logger
	// Clock is the time (default time.Now); tests move it to make the
	// service token due for renewal.
	Clock func() time.Time
}

// ErrInvalid is what an invalid token yields: Keystone does not know it, it
// expired, or it cannot be a token at all. The message never holds the token.
var ErrInvalid = errors.New("keystone: token not valid")

// Validator validates Keystone tokens. It implements barbican.Authenticator.
type Validator struct {
	source   string
	authURL  string
	opts     gophercloud.AuthOptions
	cacheFor time.Duration
	poll     time.Duration
	timeout  time.Duration
	log      *slog.Logger

	// The service user's session; built and renewed by serviceClient.
	authMu   sync.Mutex
	provider *gophercloud.ProviderClient
	identity *gophercloud.ServiceClient
	svcExp   time.Time // the service token's expiry
	svcRenew time.Time // when to renew it: a little before it expires
	failedAt time.Time // the last failed sign-in

	cache   *cache
	flight  flight
	revoke  revocations
	applyMu sync.Mutex // a poll's events vs a validation's cache insert

	validations atomic.Int64 // GET /v3/auth/tokens calls made
	stop        context.CancelFunc
	done        chan struct{}
	now         func() time.Time
}

// New checks cfg and, when the cache is on, starts following revocation
// events. It does not reach Keystone: the server starts while Keystone is
// down, and signs in on first use. Close stops it.
func New(cfg Config) (*Validator, error) {
	authURL, err := normalizeAuthURL(cfg.AuthURL)
	if err != nil {
		return nil, err
	}
	if cfg.Username == "" || cfg.Password == "" || cfg.ProjectName == "" {
		return nil, errors.New("keystone: username, password and project_name are required")
	}
	if cfg.CacheTime < 0 {
		return nil, errors.New("keystone: the cache time must not be negative")
	}
	v := &Validator{
		source: "keystone:" + authURL, authURL: authURL,
		cacheFor: cfg.CacheTime, poll: cfg.PollEvery, timeout: cfg.Timeout, log: cfg.Logger,
		cache: newCache(100000), done: make(chan struct{}), now: cfg.Clock,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.poll <= 0 {
		v.poll = DefaultPollEvery
	}
	if v.timeout <= 0 {
		v.timeout = DefaultTimeout
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	v.opts = gophercloud.AuthOptions{
		IdentityEndpoint: authURL, Username: cfg.Username, Password: cfg.Password,
		DomainName: orDefault(cfg.UserDomainName),
		Scope:      &gophercloud.AuthScope{ProjectName: cfg.ProjectName, DomainName: orDefault(cfg.ProjectDomainName)},
		// A 401 on Keywarden's own token (revoked, or Keystone's keys
		// rotated past it) signs in again once.
		AllowReauth: true,
	}
	ctx, stop := context.WithCancel(context.Background())
	v.stop = stop
	if v.cacheFor > 0 {
		go v.follow(ctx)
	} else {
		close(v.done)
	}
	return v, nil
}

func orDefault(domain string) string {
	if domain == "" {
		return "Default"
	}
	return domain
}

// normalizeAuthURL makes u an http(s) URL ending in /v3.
func normalizeAuthURL(u string) (string, error) {
	p, err := url.Parse(strings.TrimRight(u, "/"))
	if err != nil {
		return "", errors.New("keystone: auth_url is not a URL")
	}
	if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" || p.User != nil {
		return "", fmt.Errorf("keystone: auth_url %q: want http(s)://host[:port][/path], no user info or query", p.Redacted())
	}
	if !strings.HasSuffix(p.Path, "/v3") {
		p.Path += "/v3"
	}
	return p.String(), nil
}

// Source is the namespace of the identities this validator establishes:
// "keystone:" and the auth URL, normalized (so that http://k:5000 and
// http://k:5000/v3/ name one Keystone).
func (v *Validator) Source() string { return v.source }

// Validations counts the token validation requests sent to Keystone.
func (v *Validator) Validations() int64 { return v.validations.Load() }

// Close stops following revocation events.
func (v *Validator) Close() {
	v.stop()
	<-v.done
}

// Authenticate returns the identity a Keystone token carries. Errors:
// ErrInvalid (wrapped) for a token Keystone refuses; kms.Forbidden for a
// valid token without a project scope (domain, system or unscoped: nothing
// in Keywarden belongs to them); kms.Unavailable when Keystone cannot
// answer.
func (v *Validator) Authenticate(ctx context.Context, raw string) (kms.Identity, error) {
	return v.authenticate(raw, false)
}

// AuthenticateExpired is Authenticate for a user token presented next to a
// service token with the service role: as keystonemiddleware does, the
// token is accepted past its expiry (Keystone's allow_expired, within its
// [token] allow_expired_window), so that a long operation a service does
// for a user does not fail half-way. Revoked tokens are still refused.
func (v *Validator) AuthenticateExpired(ctx context.Context, raw string) (kms.Identity, error) {
	return v.authenticate(raw, true)
}

func (v *Validator) authenticate(raw string, allowExpired bool) (kms.Identity, error) {
	if !plausible(raw) {
		return kms.Identity{}, fmt.Errorf("%w: malformed", ErrInvalid)
	}
	// The two verdicts differ for an expired token: separate cache keys.
	h := sha256.New()
	if allowExpired {
		h.Write([]byte("allow_expired\x00"))
	}
	h.Write([]byte(raw))
	var key [32]byte
	h.Sum(key[:0])
	if e, ok := v.cache.get(key, v.now()); ok {
		return e.result()
	}
	e := v.flight.do(key, func() *entry { return v.validate(raw, key, allowExpired) })
	return e.result()
}

// plausible: what a token can be at all (printable ASCII, bounded), so that
// no header Go would refuse to send turns into a 503.
func plausible(raw string) bool {
	if raw == "" || len(raw) > maxTokenLen {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] > '~' {
			return false
		}
	}
	return true
}

// validate asks Keystone about raw and caches the answer.
func (v *Validator) validate(raw string, key [32]byte, allowExpired bool) *entry {
	// Not the caller's context: the answer serves every waiter in the flight.
	ctx, cancel := context.WithTimeout(context.Background(), v.timeout)
	defer cancel()
	started := v.now()
	e, err := v.lookup(ctx, raw, allowExpired)
	if err != nil {
		return &entry{err: err}
	}
	if v.cacheFor > 0 {
		e.until = started.Add(v.cacheFor)
		if e.expires.Before(e.until) && !(allowExpired && e.err == nil) {
			e.until = e.expires
		}
		// An event that arrived while Keystone was answering: do not cache,
		// the next use asks again. applyMu orders this against a poll
		// applying events, so none falls between the check and the put.
		v.applyMu.Lock()
		if e.err != nil || !v.revoke.revokedSince(e, started) {
			v.cache.put(key, e)
		}
		v.applyMu.Unlock()
	}
	return e
}

// tokenBody is what GET /v3/auth/tokens answers, as far as Keywarden needs it.
type tokenBody struct {
	ExpiresAt Time     `json:"expires_at"`
	IssuedAt  Time     `json:"issued_at"`
	AuditIDs  []string `json:"audit_ids"`
	User      struct {
		ID     string `json:"id"`
		Domain struct {
			ID string `json:"id"`
		} `json:"domain"`
	} `json:"user"`
	Project *struct {
		ID     string `json:"id"`
		Domain struct {
			ID string `json:"id"`
		} `json:"domain"`
	} `json:"project"`
	Domain *struct {
		ID string `json:"id"`
	} `json:"domain"`
	System map[string]any `json:"system"`
	Roles  []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"roles"`
	Trust *struct {
		ID      string `json:"id"`
		Trustor struct {
			ID string `json:"id"`
		} `json:"trustor_user"`
		Trustee struct {
			ID string `json:"id"`
		} `json:"trustee_user"`
	} `json:"OS-TRUST:trust"`
}

// lookup makes the Keystone call. A nil error with e.err set is Keystone's
// verdict (cacheable); a non-nil error is Keystone not answering.
func (v *Validator) lookup(ctx context.Context, raw string, allowExpired bool) (*entry, error) {
	sc, err := v.serviceClient(ctx)
	if err != nil {
		return nil, err
	}
	v.validations.Add(1)
	var res tokens.GetResult
	// nocatalog: the catalog is most of a token's body and none of our business.
	u := sc.ServiceURL("auth", "tokens") + "?nocatalog"
	if allowExpired {
		u += "&allow_expired=1"
	}
	resp, err := sc.Get(ctx, u, &res.Body, &gophercloud.RequestOpts{
		MoreHeaders: map[string]string{"X-Subject-Token": raw},
		OkCodes:     []int{http.StatusOK, http.StatusNonAuthoritativeInfo},
	})
	if resp != nil {
		res.Header = resp.Header
	}
	switch {
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		// Keystone's answer for a token it does not know, or that expired
		// or was revoked. Cached only briefly: it cannot become valid, but a
		// flood of garbage must not fill the cache.
		return &entry{err: fmt.Errorf("%w: Keystone does not know it", ErrInvalid), expires: v.now().Add(time.Minute)}, nil
	case err != nil:
		v.log.Warn("keystone: token validation failed", "auth_url", v.authURL, "err", err.Error())
		return nil, unavailable
	}
	var tb tokenBody
	if err := res.ExtractIntoStructPtr(&tb, "token"); err != nil {
		v.log.Warn("keystone: unreadable token validation answer", "err", err.Error())
		return nil, unavailable
	}
	return v.entryOf(&tb), nil
}

var unavailable = kms.Unavailable("The identity service (Keystone) cannot be reached; try again later.")

// entryOf maps a validated token to an identity: project scope to project,
// Keystone role names (lowercased) to roles, the user id to user.
func (v *Validator) entryOf(tb *tokenBody) *entry {
	e := &entry{
		expires: tb.ExpiresAt.Time, issued: tb.IssuedAt.Time, audit: tb.AuditIDs,
		user: tb.User.ID, userDomain: tb.User.Domain.ID,
	}
	for _, r := range tb.Roles {
		e.roleIDs = append(e.roleIDs, r.ID)
		e.id.Roles = append(e.id.Roles, strings.ToLower(r.Name))
	}
	if tb.Trust != nil {
		e.trust, e.trustor, e.trustee = tb.Trust.ID, tb.Trust.Trustor.ID, tb.Trust.Trustee.ID
	}
	switch {
	case tb.Project != nil:
		e.project, e.scopeDomain = tb.Project.ID, tb.Project.Domain.ID
		e.id.Project, e.id.User, e.id.Source = tb.Project.ID, tb.User.ID, v.source
	case tb.Domain != nil:
		e.scopeDomain = tb.Domain.ID
		e.err = errNotProjectScoped("a domain")
	case tb.System != nil:
		e.err = errNotProjectScoped("the system")
	default:
		e.err = errNotProjectScoped("nothing (unscoped)")
	}
	return e
}

// errNotProjectScoped: as in Barbican, such a token authenticates but owns
// nothing; every secret, container and order belongs to a project.
func errNotProjectScoped(scope string) error {
	return kms.Forbidden("The token is scoped to %s; Keywarden needs a project-scoped token.", scope)
}

// serviceClient is the identity v3 client signed in as Keywarden's service
// user, renewed before its token expires. While Keystone cannot be reached
// it fails fast: one sign-in attempt per second, not one per request
// queued behind the lock for a timeout each.
func (v *Validator) serviceClient(ctx context.Context) (*gophercloud.ServiceClient, error) {
	v.authMu.Lock()
	defer v.authMu.Unlock()
	now := v.now()
	if v.identity != nil && now.Before(v.svcRenew) {
		return v.identity, nil
	}
	if v.identity == nil && now.Sub(v.failedAt) < time.Second {
		return nil, unavailable
	}
	var err error
	if v.provider == nil {
		err = v.signIn(ctx)
	} else {
		err = v.provider.Reauthenticate(ctx, v.provider.Token())
	}
	if err == nil {
		err = v.readServiceExpiry()
	}
	switch {
	case err == nil:
		return v.identity, nil
	case v.identity != nil && now.Before(v.svcExp):
		// Renewal failed, the token still works: keep it, retry shortly.
		v.svcRenew = now.Add(5 * time.Second)
		v.log.Warn("keystone: service token renewal failed; the current one is used until it expires",
			"auth_url", v.authURL, "expires", v.svcExp, "err", err.Error())
		return v.identity, nil
	}
	v.provider, v.identity, v.failedAt = nil, nil, now
	if ctx.Err() == nil {
		v.log.Warn("keystone: service user sign-in failed", "auth_url", v.authURL, "user", v.opts.Username, "err", err.Error())
	}
	return nil, unavailable
}

func (v *Validator) signIn(ctx context.Context) error {
	pc, err := openstack.NewClient(v.authURL)
	if err != nil {
		return err
	}
	pc.HTTPClient = http.Client{Timeout: v.timeout}
	pc.UserAgent.Prepend("keywarden")
	if err := openstack.AuthenticateV3(ctx, pc, &v.opts, gophercloud.EndpointOpts{}); err != nil {
		return err
	}
	sc, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		return err
	}
	v.provider, v.identity = pc, sc
	return nil
}

func (v *Validator) readServiceExpiry() error {
	r, ok := v.provider.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return errors.New("no token after sign-in")
	}
	t, err := r.ExtractToken()
	if err != nil {
		return err
	}
	// Renew 2 minutes before expiry, or at 3/4 of a shorter lifetime.
	v.svcExp = t.ExpiresAt
	v.svcRenew = t.ExpiresAt.Add(-min(renewBefore, t.ExpiresAt.Sub(v.now())/4))
	return nil
}

// ReadPasswordFile reads the service user's password: the first line of a
// regular file that only its owner may read or write (0600 or stricter).
// Errors name the file, never what it holds.
func ReadPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("keystone: password_file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("keystone: password_file: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("keystone: password_file %s must be a regular file of mode 0600 (it is %v); chmod 600 it", path, fi.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("keystone: password_file: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("keystone: password_file %s is empty", path)
	}
	return pw, nil
}

// Time is a Keystone timestamp: ISO 8601 in UTC, with or without a zone
// (Keystone writes the expiry of a token got with an application
// credential without one).
type Time struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if v, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return fmt.Errorf("keystone: unreadable time %q", s)
}
