package barbican

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/token"
)

// Authentication: a bearer token (X-Auth-Token, as Keystone clients send it,
// or Authorization: Bearer) handed to the configured Authenticator — a
// Keywarden JWT verifier, Keystone, or both; or, in the development no-auth
// mode, Barbican's unauthenticated context headers. What the identity may do
// is decided by kms.

// Authenticator establishes who presents a token. An error that is a
// *kms.Error is answered as its kind (503 when the identity service cannot be
// reached, 403 for a valid token that cannot own anything); any other error
// means the token is not valid (401), and its text, which must never hold the
// token, is only logged.
type Authenticator interface {
	Authenticate(ctx context.Context, raw string) (kms.Identity, error)
}

// ExpiredAuthenticator is an Authenticator that can also accept a user's
// token past its expiry, for a service acting for that user: the request
// carries a valid X-Service-Token with the service role (keystonemiddleware's
// allow_expired rule).
type ExpiredAuthenticator interface {
	Authenticator
	AuthenticateExpired(ctx context.Context, raw string) (kms.Identity, error)
}

// ServiceRole is the role a service token needs for the user's token to be
// accepted past its expiry (keystonemiddleware's service_token_roles).
const ServiceRole = "service"

// Tokens sends each token by its form: a JWT (three base64url segments, the
// first a JWT header) to JWT, anything else (Keystone's fernet tokens) to
// Keystone. Either may be nil; then the other takes every token.
type Tokens struct {
	JWT, Keystone Authenticator
}

// Authenticate implements Authenticator.
func (t Tokens) Authenticate(ctx context.Context, raw string) (kms.Identity, error) {
	a := t.side(raw)
	if a == nil {
		return kms.Identity{}, errors.New("no token authenticator configured")
	}
	return a.Authenticate(ctx, raw)
}

// AuthenticateExpired implements ExpiredAuthenticator: the side a token goes
// to decides; one that cannot accept expired tokens (JWTs) checks as usual.
func (t Tokens) AuthenticateExpired(ctx context.Context, raw string) (kms.Identity, error) {
	if e, ok := t.side(raw).(ExpiredAuthenticator); ok {
		return e.AuthenticateExpired(ctx, raw)
	}
	return t.Authenticate(ctx, raw)
}

func (t Tokens) side(raw string) Authenticator {
	if t.Keystone == nil || (t.JWT != nil && token.IsJWT(raw)) {
		return t.JWT
	}
	return t.Keystone
}

type ctxKey int

const reqStateKey ctxKey = 0

// reqState is what the adapter establishes about a request as it goes: the
// frame puts one in the request's context, authenticate and negotiate fill
// it in. One context value instead of one per middleware saves a copy of
// the request (WithContext) per middleware.
type reqState struct {
	who          kms.Identity
	authed       bool
	microversion microversion
	// route and vals are the matched route's template and variable values
	// (routeVar).
	route *pathTemplate
	vals  [maxRouteVars]string
	match mux.RouteMatch // the router's work space, allocated with the state
}

// stateOf is r's state; a request that did not come through the frame
// (tests of a single middleware) gets one of its own.
func stateOf(r *http.Request) (*reqState, *http.Request) {
	if st, ok := r.Context().Value(reqStateKey).(*reqState); ok {
		return st, r
	}
	st := &reqState{}
	return st, r.WithContext(context.WithValue(r.Context(), reqStateKey, st))
}

// identity is the caller established by authenticate.
func identity(r *http.Request) kms.Identity {
	if st, ok := r.Context().Value(reqStateKey).(*reqState); ok && st.authed {
		return st.who
	}
	return kms.Identity{}
}

// authenticate establishes the caller or answers 401 (400 for a no-auth
// request without X-Project-Id, as Barbican does).
func (a *api) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := a.identify(r)
		if err == nil {
			err = who.Validate()
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		st, r := stateOf(r)
		st.who, st.authed = who, true
		next.ServeHTTP(w, r)
	})
}

var errUnauthenticated = kms.Unauthenticated("Authentication required: the token is missing, expired or invalid.")

func (a *api) identify(r *http.Request) (kms.Identity, error) {
	if raw := bearerToken(r); raw != "" && a.auth != nil {
		// A service acting for a user (Nova, Cinder through castellan) adds
		// its own token. As keystonemiddleware: an invalid one is refused,
		// whatever its scope; one with the service role lets the user's
		// token be past its expiry. The identity stays the user's.
		check := a.auth.Authenticate
		if st := strings.TrimSpace(r.Header.Get("X-Service-Token")); st != "" {
			svc, err := a.check(r, st, a.auth.Authenticate)
			if err != nil && kms.KindOf(err) != kms.KindForbidden {
				return kms.Identity{}, err
			}
			if e, ok := a.auth.(ExpiredAuthenticator); ok && err == nil && svc.Has(ServiceRole) {
				check = e.AuthenticateExpired
			}
		}
		return a.check(r, raw, check)
	}
	if !a.noAuth {
		return kms.Identity{}, errUnauthenticated
	}
	project := strings.TrimSpace(r.Header.Get("X-Project-Id"))
	if project == "" {
		return kms.Identity{}, kms.Invalid("Missing X-Project-Id")
	}
	var roles []string
	for role := range strings.SplitSeq(r.Header.Get("X-Roles"), ",") {
		if role = strings.ToLower(strings.TrimSpace(role)); role != "" {
			roles = append(roles, role)
		}
	}
	if len(roles) == 0 {
		roles = []string{kms.RoleAdmin}
	}
	return kms.Identity{
		Project: project,
		User:    strings.TrimSpace(r.Header.Get("X-User-Id")),
		Roles:   roles,
		Source:  "noauth",
	}, nil
}

// check authenticates one token with authenticate; see Authenticator for
// its errors.
func (a *api) check(r *http.Request, raw string, authenticate func(context.Context, string) (kms.Identity, error)) (kms.Identity, error) {
	who, err := authenticate(r.Context(), raw)
	if err == nil {
		return who, nil
	}
	if ke := (*kms.Error)(nil); errors.As(err, &ke) {
		return kms.Identity{}, err
	}
	a.log.Info("barbican: token rejected", "request_id", kms.RequestID(r.Context()), "reason", err.Error())
	return kms.Identity{}, errUnauthenticated
}

// bearerToken is the raw token of X-Auth-Token or Authorization: Bearer.
func bearerToken(r *http.Request) string {
	if t := strings.TrimSpace(r.Header.Get("X-Auth-Token")); t != "" {
		return t
	}
	scheme, t, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(t)
	}
	return ""
}
