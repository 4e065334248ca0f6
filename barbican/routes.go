// Package barbican is the Barbican v1 REST adapter: it translates the wire
// format that python-barbicanclient, the openstack CLI, gophercloud and
// castellan speak into calls on kms.Service, and kms errors back into
// Barbican's error bodies. It holds no rule of its own: who may read a
// secret, when a delete is refused and how large a payload may be are
// decided by kms.
//
// Layout: one file per resource (versions.go, secrets.go, metadata.go,
// acls.go, ...), each holding its handlers and wire types (secrets.go's in
// secrets_wire.go); every route is a row of the one route table here
// (method, path template, metrics label, handler); the conventions every
// resource shares live once in their own files (errors.go, refs.go,
// timestamps.go, paging.go, microversion.go, auth.go, wire.go).
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

	"github.com/keywarden/keywarden/consumers"
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
	// OrphanRule is the rule /v1/orphans applies where the query names no
	// grace or older_than: the operator's configured one (zero Grace:
	// DefaultOrphanGrace).
	OrphanRule consumers.OrphanRule
}

// api is the adapter's state, shared by every resource's handlers.
type api struct {
	svc        *kms.Service
	auth       Authenticator
	noAuth     bool
	hostHref   string
	maxBody    int64
	log        *slog.Logger
	observe    func(route, method string, status int, elapsed time.Duration)
	orphanRule consumers.OrphanRule
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
		maxBody: cfg.MaxBody, log: cfg.Logger, observe: cfg.Observe, orphanRule: cfg.OrphanRule,
	}
	if a.orphanRule.Grace <= 0 {
		a.orphanRule.Grace = DefaultOrphanGrace
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

// router maps paths to handlers: the route table below, in its order.
// Version discovery is public; every other route goes through
// authentication, then microversion negotiation.
//
// A route is a mux MatcherFunc that compares the path segment by segment
// (no regexp) and fills the request's route variables, with the middlewares wrapped around the
// handler once, at registration, rather than by the router on every request.
func (a *api) router() *mux.Router {
	r := mux.NewRouter()
	// Never answer with a redirect: a 301 turns a POST into a GET.
	r.SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(a.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(a.methodNotAllowed)
	for _, rt := range a.routes() {
		h := a.negotiate(rt.handler)
		if rt.access == authenticated {
			h = a.authenticate(h)
		}
		r.NewRoute().MatcherFunc(newPathTemplate(rt.path).match).Methods(rt.method).Handler(h)
	}
	return r
}

// route is one row of the route table.
type route struct {
	method string
	// path is the template: a variable ("{id}") is one non-empty segment,
	// as mux's default pattern [^/]+.
	path string
	// label names the route in metrics: RouteLabel of the route's paths
	// (a test holds them equal).
	label   string
	access  access
	handler http.HandlerFunc
}

// access says whether a route needs a token.
type access bool

const (
	authenticated access = false
	public        access = true
)

// routes is the route table: every method and path the adapter answers.
// Routes are tried in this order, so the hot ones (payload GET, secret
// POST) come first.
func (a *api) routes() []route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	)
	secACL, ctrACL := a.secretACLs(), a.containerACLs()
	return []route{
		// secrets.go
		{get, "/v1/secrets/{id}/payload", "/v1/secrets/{id}/payload", authenticated, a.getSecretPayload},
		{post, "/v1/secrets", "/v1/secrets", authenticated, a.createSecret},
		{get, "/v1/secrets", "/v1/secrets", authenticated, a.listSecrets},
		{get, "/v1/secrets/{id}", "/v1/secrets/{id}", authenticated, a.getSecret},
		{put, "/v1/secrets/{id}", "/v1/secrets/{id}", authenticated, a.putSecretPayload},
		{del, "/v1/secrets/{id}", "/v1/secrets/{id}", authenticated, a.deleteSecret},

		// metadata.go
		{get, "/v1/secrets/{id}/metadata", "/v1/secrets/{id}/metadata", authenticated, a.getMetadata},
		{put, "/v1/secrets/{id}/metadata", "/v1/secrets/{id}/metadata", authenticated, a.putMetadata},
		{post, "/v1/secrets/{id}/metadata", "/v1/secrets/{id}/metadata", authenticated, a.postMetadatum},
		{get, "/v1/secrets/{id}/metadata/{key}", "/v1/secrets/{id}/metadata/{key}", authenticated, a.getMetadatum},
		{put, "/v1/secrets/{id}/metadata/{key}", "/v1/secrets/{id}/metadata/{key}", authenticated, a.putMetadatum},
		{del, "/v1/secrets/{id}/metadata/{key}", "/v1/secrets/{id}/metadata/{key}", authenticated, a.deleteMetadatum},

		// acls.go
		{get, "/v1/secrets/{id}/acl", "/v1/secrets/{id}/acl", authenticated, a.getACL(secACL)},
		{put, "/v1/secrets/{id}/acl", "/v1/secrets/{id}/acl", authenticated, a.setACL(secACL, true)},
		{patch, "/v1/secrets/{id}/acl", "/v1/secrets/{id}/acl", authenticated, a.setACL(secACL, false)},
		{del, "/v1/secrets/{id}/acl", "/v1/secrets/{id}/acl", authenticated, a.deleteACL(secACL)},

		// versions.go
		{get, "/", "/", public, a.listVersions},
		{get, "/v1", "/v1", public, a.getVersion},

		// consumers.go
		{get, "/v1/secrets/{id}/consumers", "/v1/secrets/{id}/consumers", authenticated, a.listConsumers},
		{post, "/v1/secrets/{id}/consumers", "/v1/secrets/{id}/consumers", authenticated, a.addConsumer},
		{del, "/v1/secrets/{id}/consumers", "/v1/secrets/{id}/consumers", authenticated, a.removeConsumer},

		// orders.go
		{get, "/v1/orders", "/v1/orders", authenticated, a.listOrders},
		{post, "/v1/orders", "/v1/orders", authenticated, a.createOrder},
		{get, "/v1/orders/{id}", "/v1/orders/{id}", authenticated, a.getOrder},
		{del, "/v1/orders/{id}", "/v1/orders/{id}", authenticated, a.deleteOrder},

		// containers.go, container_acls.go
		{get, "/v1/containers", "/v1/containers", authenticated, a.listContainers},
		{post, "/v1/containers", "/v1/containers", authenticated, a.createContainer},
		{get, "/v1/containers/{id}", "/v1/containers/{id}", authenticated, a.getContainer},
		{del, "/v1/containers/{id}", "/v1/containers/{id}", authenticated, a.deleteContainer},
		{get, "/v1/containers/{id}/consumers", "/v1/containers/{id}/consumers", authenticated, a.listContainerConsumers},
		{post, "/v1/containers/{id}/consumers", "/v1/containers/{id}/consumers", authenticated,
			changeContainer(a, readContainerConsumer, a.svc.AddContainerConsumer, a.containerConsumerChanged)},
		{del, "/v1/containers/{id}/consumers", "/v1/containers/{id}/consumers", authenticated,
			changeContainer(a, readContainerConsumer, a.svc.RemoveContainerConsumer, a.containerConsumerChanged)},
		{post, "/v1/containers/{id}/secrets", "/v1/containers/{id}/secrets", authenticated,
			changeContainer(a, a.readContainerSecret, a.svc.AddContainerSecret, a.containerSecretChanged)},
		{del, "/v1/containers/{id}/secrets", "/v1/containers/{id}/secrets", authenticated,
			changeContainer(a, a.readContainerSecret, a.svc.RemoveContainerSecret, a.containerSecretChanged)},
		{get, "/v1/containers/{id}/acl", "/v1/containers/{id}/acl", authenticated, a.getACL(ctrACL)},
		{put, "/v1/containers/{id}/acl", "/v1/containers/{id}/acl", authenticated, a.setACL(ctrACL, true)},
		{patch, "/v1/containers/{id}/acl", "/v1/containers/{id}/acl", authenticated, a.setACL(ctrACL, false)},
		{del, "/v1/containers/{id}/acl", "/v1/containers/{id}/acl", authenticated, a.deleteACL(ctrACL)},

		// clone.go
		{post, "/v1/secrets/{id}/clone", "/v1/secrets/{id}/clone", authenticated, a.cloneSecret},
		{get, "/v1/secrets/{id}/lifecycle", "/v1/secrets/{id}/lifecycle", authenticated, a.getLifecycle},

		// orphans.go
		{get, "/v1/orphans", "/v1/orphans", authenticated, a.orphans},
		{del, "/v1/orphans", "/v1/orphans", authenticated, a.orphans},

		// quotas.go
		{get, "/v1/quotas", "/v1/quotas", authenticated, a.getQuotas},
		{get, "/v1/project-quotas", "/v1/project-quotas", authenticated, a.listProjectQuotas},
		{get, "/v1/project-quotas/{project}", "/v1/project-quotas/{id}", authenticated, a.getProjectQuotas},
		{put, "/v1/project-quotas/{project}", "/v1/project-quotas/{id}", authenticated, a.putProjectQuotas},
		{del, "/v1/project-quotas/{project}", "/v1/project-quotas/{id}", authenticated, a.deleteProjectQuotas},
	}
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
// on a match the variables go to the request state (routeVar).
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
	// The frame's request state takes the variables: no map, and no copy
	// of the request for mux's context (see frame). A later route that
	// matches path and method overwrites what an earlier path match left.
	if st, ok := r.Context().Value(reqStateKey).(*reqState); ok {
		st.route, st.vals = t, vals
		return true
	}
	// Outside the frame (a router used on its own): mux.Vars.
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

// routeVar is the value of the matched route's variable name ("" if none).
func routeVar(r *http.Request, name string) string {
	st, ok := r.Context().Value(reqStateKey).(*reqState)
	if !ok || st.route == nil {
		return mux.Vars(r)[name]
	}
	n := 0
	for _, v := range st.route.vars {
		if v == name {
			return st.vals[n]
		}
		if v != "" {
			n++
		}
	}
	return ""
}

// frame does what every request needs before routing: a request id (sent
// back and handed to kms for the audit trail), the body cap, trailing-slash
// folding (python-barbicanclient posts to /v1/secrets/) and a last-resort
// recover that answers a generic 500.
func (a *api) frame(next *mux.Router) http.Handler {
	notFound := http.HandlerFunc(a.notFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.observe != nil {
			sw := &statusWriter{ResponseWriter: w}
			start := time.Now()
			defer func() { a.observe(RouteLabel(r.URL.Path), r.Method, sw.code(), time.Since(start)) }()
			w = sw
		}
		rid := newRequestID()
		w.Header()["X-Openstack-Request-Id"] = []string{rid}
		st := &reqState{}
		r = r.WithContext(context.WithValue(kms.WithRequest(r.Context(), rid, "rest", r.RemoteAddr), reqStateKey, st))
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
		// mux chooses the route; calling its Match rather than its
		// ServeHTTP spares two copies of the request (route and vars in the
		// context) per request: the variables are in the request state.
		var h http.Handler = notFound
		if m := &st.match; next.Match(r, m) && m.Handler != nil {
			h = m.Handler
		}
		h.ServeHTTP(w, r)
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
