package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/keywarden/keywarden/kms/token"
	"github.com/keywarden/keywarden/tests/testserver"
)

// refusedAtStart runs `keywarden serve args...` expecting it to exit
// non-zero on its own, before it serves; a server that starts instead is
// killed after 15 s and the test fails.
func refusedAtStart(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testserver.Binary(t), append([]string{"serve"}, args...)...).CombinedOutput()
	var exit *exec.ExitError
	if ctx.Err() != nil || !errors.As(err, &exit) || exit.ExitCode() <= 0 {
		t.Fatalf("serve %v was not refused at start-up (err %v):\n%s", args, err, out)
	}
	if strings.Contains(string(out), "keywarden started") {
		t.Fatalf("serve %v started before it was refused:\n%s", args, out)
	}
	return string(out)
}

func TestNoAuthRefusedOffLoopback(t *testing.T) {
	dir := t.TempDir()
	port := func() string { return testserver.FreeAddr(t)[len("127.0.0.1"):] } // ":NNNNN"
	for _, tc := range []struct{ flag, addr string }{
		{"--rest-addr", "0.0.0.0" + port()},
		{"--rest-addr", port()}, // an empty host is every interface
		{"--kmip-addr", "[::]" + port()},
		{"--metrics-addr", "10.255.255.1" + port()},
	} {
		// Every other listener on loopback or off; the last of a flag wins.
		out := refusedAtStart(t, "--data-dir", dir, "--insecure-noauth", "--rest-addr", testserver.FreeAddr(t),
			"--kmip-addr", "", tc.flag, tc.addr)
		if !strings.Contains(out, fmt.Sprintf("%q", tc.addr)) || !strings.Contains(out, "--insecure-noauth") {
			t.Errorf("%s %s: the refusal does not name the address and the flag:\n%s", tc.flag, tc.addr, out)
		}
	}
	// Loopback in every spelling is fine with --insecure-noauth.
	srv := testserver.Start(t, testserver.Options{NoAuth: true, KMIP: true, Args: []string{"--metrics-addr", "localhost:0"}})
	if status, b := call(t, srv, "", "GET", "/v1/secrets", ""); status != http.StatusBadRequest {
		t.Errorf("no-auth mode without X-Project-Id: want 400, got %d %s", status, b)
	}
}

func TestNoAuthNotFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kw.yaml")
	for _, v := range []string{"true", "false"} {
		os.WriteFile(cfg, []byte("auth:\n  insecure_noauth: "+v+"\n"), 0o600)
		out := refusedAtStart(t, "--config", cfg, "--data-dir", dir, "--rest-addr", testserver.FreeAddr(t), "--kmip-addr", "")
		if !strings.Contains(out, "auth.insecure_noauth") || !strings.Contains(out, "--insecure-noauth") {
			t.Errorf("insecure_noauth: %s in the file: the refusal names neither the key nor the flag:\n%s", v, out)
		}
	}
	os.WriteFile(cfg, []byte("auth:\n  disable_hmac: true\n"), 0o600)
	if out := refusedAtStart(t, "--config", cfg, "--data-dir", dir); !strings.Contains(out, "allow_hmac") {
		t.Errorf("disable_hmac: the refusal does not say what replaced it:\n%s", out)
	}
}

// call sends method path with tok and returns the status and body.
func call(t *testing.T, srv *testserver.Server, tok, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if strings.HasSuffix(path, "/payload") {
		req.Header.Set("Accept", "text/plain")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// mint runs `keywarden token` for srv's data dir.
func mint(t *testing.T, srv *testserver.Server, args ...string) string {
	t.Helper()
	out, err := exec.Command(testserver.Binary(t), append([]string{"token", "--data-dir", srv.DataDir}, args...)...).Output()
	if err != nil {
		t.Fatalf("keywarden token %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// expect401 checks a refusal is Barbican's 401 body and that the token is
// in neither the answer nor the server's log.
func expect401(t *testing.T, srv *testserver.Server, what, tok string) {
	t.Helper()
	status, b := call(t, srv, tok, "GET", "/v1/secrets", "")
	wantRefusal(t, what, status, b, http.StatusUnauthorized)
	if strings.Contains(string(b), tok) || strings.Contains(srv.Log(), tok) {
		t.Errorf("%s: the token was echoed in the answer or the log", what)
	}
}

func expect200(t *testing.T, srv *testserver.Server, what, tok string) {
	t.Helper()
	if status, b := call(t, srv, tok, "GET", "/v1/secrets", ""); status != http.StatusOK {
		t.Errorf("%s: want 200, got %d %s", what, status, b)
	}
}

func TestTokenLifetimeIssuerAudience(t *testing.T) {
	// Defaults: at most 24h.
	srv := testserver.Start(t, testserver.Options{})
	expect200(t, srv, "1h token", mint(t, srv, "--project", "p1", "--user", "ann", "--ttl", "1h"))
	expect401(t, srv, "10-year token", mint(t, srv, "--project", "p1", "--user", "ann", "--ttl", "87600h"))
	expect401(t, srv, "25h token", mint(t, srv, "--project", "p1", "--user", "ann", "--ttl", "25h"))

	// Configured: issuer, audience and a 2h maximum.
	cfg := filepath.Join(t.TempDir(), "kw.yaml")
	os.WriteFile(cfg, []byte("auth:\n  jwt:\n    issuer: https://idp.example\n    audience: keywarden\n    max_lifetime: 2h\n"), 0o600)
	srv = testserver.Start(t, testserver.Options{Args: []string{"--config", cfg}})
	ok := []string{"--project", "p1", "--user", "ann", "--issuer", "https://idp.example", "--audience", "keywarden"}
	expect200(t, srv, "matching iss and aud, 1h", mint(t, srv, append(ok, "--ttl", "1h")...))
	expect401(t, srv, "3h token over a 2h maximum", mint(t, srv, append(ok, "--ttl", "3h")...))
	expect401(t, srv, "wrong iss", mint(t, srv, "--project", "p1", "--user", "ann", "--issuer", "https://evil.example", "--audience", "keywarden"))
	expect401(t, srv, "default iss", mint(t, srv, "--project", "p1", "--user", "ann", "--audience", "keywarden"))
	expect401(t, srv, "wrong aud", mint(t, srv, "--project", "p1", "--user", "ann", "--issuer", "https://idp.example", "--audience", "nova"))
	expect401(t, srv, "no aud", mint(t, srv, "--project", "p1", "--user", "ann", "--issuer", "https://idp.example"))
}

// newIdP is an identity provider signing ES256 tokens with issuer iss: it
// writes its public key (PEM) into dir and returns the path and a signer.
func newIdP(t *testing.T, dir, iss string) (pub string, sign func(project, user, roles string) string) {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pub = filepath.Join(dir, "idp.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return pub, func(project, user, roles string) string {
		t.Helper()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, token.Claims{Project: project, Roles: strings.Split(roles, ","),
			RegisteredClaims: jwt.RegisteredClaims{Issuer: iss, Subject: user,
				IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

func TestHMACOffBesidePublicKeys(t *testing.T) {
	dir := t.TempDir()
	pub, sign := newIdP(t, dir, "idp")
	es256 := sign("p1", "ann", "admin")
	data := filepath.Join(dir, "data")
	start := func(allow bool) *testserver.Server {
		cfg := filepath.Join(dir, "kw.yaml")
		os.WriteFile(cfg, fmt.Appendf(nil, "auth:\n  jwt:\n    public_keys: [%s]\n    allow_hmac: %v\n", pub, allow), 0o600)
		return testserver.Start(t, testserver.Options{DataDir: data, Args: []string{"--config", cfg}})
	}
	srv := start(false)
	hs256 := mint(t, srv, "--project", "p1", "--user", "ann") // creates token.key: the server must still ignore it
	expect200(t, srv, "ES256 from the configured key", es256)
	expect401(t, srv, "HS256 beside public keys", hs256)
	srv.Stop(t)

	srv = start(true)
	expect200(t, srv, "HS256 with allow_hmac: true", hs256)
	expect200(t, srv, "ES256 with allow_hmac: true", es256)
}

// Tokens name their user: two creators of one project, and a secret the
// first made private is not the second's.
func TestTokensNameTheirUser(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	out, err := testserver.Run(t, "token", "--data-dir", srv.DataDir, "--project", "p1")
	if err == nil || !strings.Contains(out, "--user is required") {
		t.Fatalf("token without --user: %v\n%s", err, out)
	}
	out, err = testserver.Run(t, "token", "--data-dir", srv.DataDir, "--project", "p1", "--user", " ")
	if err == nil || !strings.Contains(out, "--user is required") {
		t.Fatalf("token with a blank --user: %v\n%s", err, out)
	}
	ann := mint(t, srv, "--project", "p1", "--user", "ann", "--roles", "creator")
	bob := mint(t, srv, "--project", "p1", "--user", "bob", "--roles", "creator")
	status, b := call(t, srv, ann, "POST", "/v1/secrets",
		`{"name":"ann's","payload":"only ann","payload_content_type":"text/plain"}`)
	var created struct {
		Ref string `json:"secret_ref"`
	}
	if status != http.StatusCreated || json.Unmarshal(b, &created) != nil {
		t.Fatalf("create: %d %s", status, b)
	}
	path := created.Ref[strings.Index(created.Ref, "/v1/"):]
	if status, b := call(t, srv, bob, "GET", path+"/payload", ""); status != http.StatusOK || string(b) != "only ann" {
		t.Fatalf("before the ACL, a project creator reads: %d %s", status, b)
	}
	if status, b := call(t, srv, ann, "PUT", path+"/acl", `{"read":{"project-access":false}}`); status != http.StatusOK {
		t.Fatalf("private ACL: %d %s", status, b)
	}
	if status, b := call(t, srv, ann, "GET", path+"/payload", ""); status != http.StatusOK || string(b) != "only ann" {
		t.Fatalf("the creator cannot read her private secret: %d %s", status, b)
	}
	if status, b := call(t, srv, bob, "GET", path+"/payload", ""); status != http.StatusForbidden && status != http.StatusNotFound {
		t.Fatalf("another user of the project read a private secret: %d %s", status, b)
	}
}
