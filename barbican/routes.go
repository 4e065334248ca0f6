// Package barbican is the Barbican v1 REST adapter: it translates the wire
// format that python-barbicanclient, the openstack CLI, gophercloud and
// castellan speak into calls on kms.Service, and kms errors back into
// Barbican's error bodies. It holds no rule of its own: who may read a
// secret, when a delete is refused and how large a payload may be are
// decided by kms.
//
// Layout: one file per resource (versions.go, secrets.go, metadata.go,
// acls.go, ...), each holding its handlers and wire types and contributing a
// registerXxx method to the router built here; the conventions every resource
// shares live once in their own files (errors.go, refs.go, timestamps.go,
// paging.go, microversion.go, auth.go, wire.go).
package barbican

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/keywarden/keywarden/kms"
)

// DefaultMaxBody caps a request body when Config.MaxBody is not set.
const DefaultMaxBody = 1 << 20

// Config is what the adapter needs.
type Config struct {
	Service *kms.Service
	// Auth establishes who presents a token (X-Auth-Token or Authorization:
	// Bearer): a *token.Verifier for JWTs, a *keystone.Validator, or both
	// behind a Tokens. It may be nil only when NoAuth is set.
	Auth Authenticator
	// NoAuth (development only) takes the identity from X-Project-Id
	// (required, else 400), X-User-Id and X-Roles (comma list; absent:
	// admin). A token, when present and Auth is set, still wins.
	NoAuth bool
	// HostHref is the base of every ref, e.g. "https://kms.example:9311";
	// empty: taken from the request's Host and X-Forwarded-Proto.
	HostHref string
	// MaxBody caps a request body in bytes (default DefaultMaxBody).
	MaxBody int64
	// Logger receives request failures (never payloads or tokens);
	// nil: slog.Default().
	Logger *slog.Logger
	// Observe, when set, is told of every answered request: its route
	// (RouteLabel), method, status and duration. It must be cheap.
	Observe func(route, method string, status int, elapsed time.Duration)
}

// api is the adapter's state, shared by every resource's handlers.
type api struct {
	svc      *kms.Service
	auth     Authenticator
	noAuth   bool
	hostHref string
	maxBody  int64
	log      *slog.Logger
	observe  func(route, method string, status int, elapsed time.Duration)
}

// New builds the Barbican v1 HTTP handler.
func New(cfg Config) (http.Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("barbican: no kms service")
	}
	if cfg.Auth == nil && !cfg.NoAuth {
		return nil, errors.New("barbican: an authenticator is required unless NoAuth is set")
	}
	a := &api{
		svc: cfg.Service, auth: cfg.Auth, noAuth: cfg.NoAuth,
		maxBody: cfg.MaxBody, log: cfg.Logger, observe: cfg.Observe,
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBody
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if cfg.HostHref != "" {
		u, err := url.Parse(cfg.HostHref)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("barbican: host href %q is not an http(s) base URL", cfg.HostHref)
		}
		a.hostHref = strings.TrimRight(cfg.HostHref, "/")
	}
	return a.frame(a.router()), nil
}

// router maps paths to handlers. Version discovery is public; every other
// route goes through authentication, then microversion negotiation.
//
// The resources of this package add their routes with a.route: a mux
// MatcherFunc that compares the path segment by segment (no regexp) and
// fills mux.Vars, with the middlewares wrapped around the handler once, at
// registration, rather than by the router on every request. Routes are
// tried in registration order, so the hot ones (payload GET, secret POST)
// come first. The consumers, orders, clone, orphans, quotas and containers
// resources register ordinary mux routes, with full paths
// ("/v1/secrets/{id}"), on the authenticated subrouter they are given,
// which is tried last.
func (a *api) router() *mux.Router {
	r := mux.NewRouter()
	// Never answer with a redirect: a 301 turns a POST into a GET.
	r.SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(a.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(a.methodNotAllowed)

	a.registerSecrets(r)
	a.registerMetadata(r)
	a.registerACLs(r)
	a.registerVersions(r)

	// A subrouter without matchers of its own: gorilla/mux v1.8.1 loses a
	// 405 inside a PathPrefix subrouter (its copied prefix matcher resets
	// the method mismatch), so routes carry their full path instead.
	v1 := r.NewRoute().Subrouter()
	v1.Use(a.authenticate, a.negotiate)
	a.registerConsumers(v1)
	a.registerOrders(v1)
	a.registerContainers(v1)
	a.registerClone(v1)
	a.registerOrphans(v1)
	a.registerQuotas(v1)
	return r
}

// route registers h for method on the path template tpl ("/v1/secrets/{id}";
// a variable is one non-empty segment, as mux's default pattern [^/]+),
// behind authentication and microversion negotiation.
func (a *api) route(r *mux.Router, method, tpl string, h http.HandlerFunc) {
	a.publicRoute(r, method, tpl, a.authenticate(a.negotiate(h)))
}

// publicRoute registers h as is: no authentication, no negotiation.
func (a *api) publicRoute(r *mux.Router, method, tpl string, h http.Handler) {
	r.NewRoute().MatcherFunc(newPathTemplate(tpl).match).Methods(method).Handler(h)
}

// pathTemplate is a route path split into segments; vars[i] is the name of
// segment i when it is a variable, "" when it is the literal segs[i].
type pathTemplate struct {
	segs, vars []string
	nvars      int
}

func newPathTemplate(tpl string) *pathTemplate {
	if !strings.HasPrefix(tpl, "/") {
		panic("barbican: route template must start with /: " + tpl)
	}
	t := &pathTemplate{}
	if tpl == "/" {
		return t
	}
	for seg := range strings.SplitSeq(tpl[1:], "/") {
		name := ""
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name = seg[1 : len(seg)-1]
			if name == "" || strings.ContainsAny(name, ":{}") {
				panic("barbican: unsupported route variable in " + tpl)
			}
			t.nvars++
		} else if seg == "" || strings.ContainsAny(seg, "{}") {
			panic("barbican: unsupported route template " + tpl)
		}
		t.segs = append(t.segs, seg)
		t.vars = append(t.vars, name)
	}
	if t.nvars > maxRouteVars {
		panic("barbican: too many route variables in " + tpl)
	}
	return t
}

// maxRouteVars bounds the variables of a template, so that matching needs
// no allocation until the path is known to match.
const maxRouteVars = 4

// match is a mux.MatcherFunc: the whole of the request path must match, and
// on a match the variables become the route's mux.Vars.
func (t *pathTemplate) match(r *http.Request, m *mux.RouteMatch) bool {
	p := r.URL.Path
	if len(t.segs) == 0 {
		return p == "/"
	}
	var vals [maxRouteVars]string
	n := 0
	for i, seg := range t.segs {
		if len(p) == 0 || p[0] != '/' {
			return false
		}
		p = p[1:]
		end := strings.IndexByte(p, '/')
		if end < 0 {
			end = len(p)
		}
		got := p[:end]
		p = p[end:]
		if t.vars[i] == "" {
			if got != seg {
				return false
			}
		} else {
			if got == "" {
				return false
			}
			vals[n] = got
			n++
		}
	}
	if p != "" {
		return false
	}
	// A fresh map on every match, so that no variable of a route that
	// matched the path but not the method is left behind.
	vars := make(map[string]string, t.nvars)
	n = 0
	for _, name := range t.vars {
		if name != "" {
			vars[name] = vals[n]
			n++
		}
	}
	m.Vars = vars
	return true
}

// frame does what every request needs before routing: a request id (sent
// back and handed to kms for the audit trail), the body cap, trailing-slash
// folding (python-barbicanclient posts to /v1/secrets/) and a last-resort
// recover that answers a generic 500.
func (a *api) frame(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.observe != nil {
			sw := &statusWriter{ResponseWriter: w}
			start := time.Now()
			defer func() { a.observe(RouteLabel(r.URL.Path), r.Method, sw.code(), time.Since(start)) }()
			w = sw
		}
		rid := newRequestID()
		w.Header()["X-Openstack-Request-Id"] = []string{rid}
		r = r.WithContext(context.WithValue(kms.WithRequest(r.Context(), rid, "rest", r.RemoteAddr), reqStateKey, &reqState{}))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.Error("barbican: panic serving request", "request_id", rid,
					"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				a.fail(w, r, errors.New("panic"))
			}
		}()

		// Refuse an oversized body before reading any of it; a body without
		// a length is cut off by MaxBytesReader as it is read.
		if r.ContentLength > a.maxBody {
			w.Header().Set("Connection", "close")
			a.fail(w, r, kms.TooLarge("request body is larger than %d bytes", a.maxBody))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, a.maxBody)
		}

		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			u := *r.URL
			u.Path = strings.TrimRight(p, "/")
			if u.Path == "" {
				u.Path = "/"
			}
			u.RawPath = ""
			r.URL = &u
		}
		next.ServeHTTP(w, r)
	})
}

// newRequestID is "req-" and a random (version 4) UUID, as Barbican's
// request ids are, built in one allocation.
func newRequestID() string {
	var u uuid.UUID
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant RFC 4122
	var b [4 + 36]byte
	copy(b[:], "req-")
	hex.Encode(b[4:12], u[0:4])
	b[12] = '-'
	hex.Encode(b[13:17], u[4:6])
	b[17] = '-'
	hex.Encode(b[18:22], u[6:8])
	b[22] = '-'
	hex.Encode(b[23:27], u[8:10])
	b[27] = '-'
	hex.Encode(b[28:40], u[10:16])
	return string(b[:])
}

func (a *api) notFound(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, kms.NotFound("The resource could not be found."))
}

func (a *api) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, statusError(http.StatusMethodNotAllowed,
		"The method %s is not allowed for this resource.", r.Method))
}
