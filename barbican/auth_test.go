package barbican

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/token"
)

var alice = kms.Identity{Project: "p1", User: "alice", Roles: []string{kms.RoleCreator}}

func TestAuthMissingTokenIs401(t *testing.T) {
	e := newEnv(t, withAuth())
	r := e.do("GET", "/v1/secrets", nil) // X-Project-Id alone is no identity here
	checkError(t, r, http.StatusUnauthorized)
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
}

func TestAuthExpiredTokenIs401(t *testing.T) {
	e := newEnv(t, withAuth())
	tok := mint(t, alice, -time.Minute)
	checkError(t, e.do("GET", "/v1/secrets", nil, "X-Auth-Token", tok), http.StatusUnauthorized)
}

func TestAuthForgedTokenIs401(t *testing.T) {
	e := newEnv(t, withAuth())
	forged, err := token.Mint([]byte("not-the-server-secret-at-all-0000"), alice, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	checkError(t, e.do("GET", "/v1/secrets", nil, "X-Auth-Token", forged), http.StatusUnauthorized)
	good := mint(t, alice, time.Hour)
	tampered := good[:len(good)-4] + "AAAA"
	checkError(t, e.do("GET", "/v1/secrets", nil, "Authorization", "Bearer "+tampered), http.StatusUnauthorized)
	checkError(t, e.do("GET", "/v1/secrets", nil, "X-Auth-Token", "not.a.jwt"), http.StatusUnauthorized)
	if strings.Contains(e.logs.String(), tampered) || strings.Contains(e.logs.String(), forged) {
		t.Error("a token reached the logs")
	}
}

func TestAuthTokenHeaders(t *testing.T) {
	e := newEnv(t, withAuth())
	tok := mint(t, alice, time.Hour)
	r := e.must(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "a"}, "X-Auth-Token", tok)
	id := idOfRef(t, r.JSON(t)["secret_ref"].(string))
	got := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil, "Authorization", "Bearer "+tok).JSON(t)
	if got["creator_id"] != "alice" {
		t.Errorf("creator_id %v", got["creator_id"])
	}
	// The token's project wins over any X-Project-Id.
	bob := mint(t, kms.Identity{Project: "p2", User: "bob", Roles: []string{kms.RoleAdmin}}, time.Hour)
	checkError(t, e.do("GET", "/v1/secrets/"+id, nil, "X-Auth-Token", bob, "X-Project-Id", "p1"), http.StatusForbidden)
}

func TestNoAuthMissingProjectIs400(t *testing.T) {
	e := newEnv(t)
	checkError(t, e.do("GET", "/v1/secrets", nil, "X-Project-Id", "-"), http.StatusBadRequest)
}

func TestNoAuthRoles(t *testing.T) {
	e := newEnv(t)
	// No X-Roles: admin.
	id := e.createText("a", "s")
	// An observer may list and read but not create.
	checkError(t, e.do("POST", "/v1/secrets", map[string]any{"name": "b"}, "X-Roles", "observer"), http.StatusForbidden)
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil, "X-Roles", " Observer ", "X-User-Id", "u2")
	// audit may read metadata but not the payload.
	e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil, "X-Roles", "audit", "X-User-Id", "u2")
	checkError(t, e.do("GET", "/v1/secrets/"+id+"/payload", nil, "X-Roles", "audit", "X-User-Id", "u2"), http.StatusForbidden)
}

func TestNoAuthTokenStillWins(t *testing.T) {
	e := newEnv(t)
	checkError(t, e.do("GET", "/v1/secrets", nil, "X-Auth-Token", "bad"), http.StatusUnauthorized)
	e.must(http.StatusOK, "GET", "/v1/secrets", nil, "X-Auth-Token", mint(t, alice, time.Hour), "X-Project-Id", "-")
}

// A service acting for a user adds its own token: an invalid one is
// refused (401) even next to a valid user token; a valid one changes
// nothing about who the caller is.
func TestAuthServiceToken(t *testing.T) {
	e := newEnv(t, withAuth())
	user := mint(t, alice, time.Hour)
	svc := mint(t, kms.Identity{Project: "service", User: "nova", Roles: []string{"service"}}, time.Hour)
	r := e.must(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "a"}, "X-Auth-Token", user, "X-Service-Token", svc)
	id := idOfRef(t, r.JSON(t)["secret_ref"].(string))
	if got := e.must(http.StatusOK, "GET", "/v1/secrets/"+id, nil, "X-Auth-Token", user).JSON(t); got["creator_id"] != "alice" {
		t.Errorf("creator_id %v: the service token's identity was used", got["creator_id"])
	}
	expired := mint(t, kms.Identity{Project: "service", User: "nova"}, -time.Minute)
	checkError(t, e.do("GET", "/v1/secrets/"+id, nil, "X-Auth-Token", user, "X-Service-Token", expired), http.StatusUnauthorized)
}

// Tokens routes by form: a JWT to JWT, anything else to Keystone.
func TestTokensRouteByForm(t *testing.T) {
	var jwtSeen, otherSeen []string
	route := Tokens{
		JWT:      authFunc(func(raw string) { jwtSeen = append(jwtSeen, raw) }),
		Keystone: authFunc(func(raw string) { otherSeen = append(otherSeen, raw) }),
	}
	jwt := mint(t, alice, time.Hour)
	for _, raw := range []string{jwt, "gAAAAABfernet-token", "a.b.c"} {
		route.Authenticate(t.Context(), raw)
	}
	if len(jwtSeen) != 1 || jwtSeen[0] != jwt || len(otherSeen) != 2 {
		t.Errorf("JWT side got %d, Keystone side %d", len(jwtSeen), len(otherSeen))
	}
	// One side alone takes every token.
	jwtSeen = nil
	Tokens{JWT: route.JWT}.Authenticate(t.Context(), "gAAAAABfernet-token")
	if len(jwtSeen) != 1 {
		t.Error("a JWT-only router dropped a non-JWT token")
	}
}

// authFunc records the tokens it is shown (a routing probe, not an
// authenticator: it accepts nothing).
type authFunc func(raw string)

func (f authFunc) Authenticate(_ context.Context, raw string) (kms.Identity, error) {
	f(raw)
	return kms.Identity{}, errors.New("probe")
}
