package keystone

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/keywarden/keywarden/tests/testserver"
)

// startKeywarden runs keywarden serve with auth.keystone (default cache)
// next to its development JWTs.
func startKeywarden(t *testing.T) *testserver.Server {
	t.Helper()
	return testserver.Start(t, testserver.Options{Args: []string{"--config", keywardenConfig(t)}})
}

// keywardenConfig writes a config file with auth.keystone as the fixture's
// service user, its password in a 0600 file.
func keywardenConfig(t *testing.T) string {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "keystone-password")
	if err := os.WriteFile(pwFile, []byte(world.users["keywarden"].Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "keywarden.yaml")
	// allow_hmac: the tests' own development JWTs beside Keystone tokens
	// (with Keystone configured the development key is otherwise off).
	body := fmt.Sprintf(`auth:
  jwt:
    allow_hmac: true
  keystone:
    auth_url: %s
    username: keywarden
    password_file: %s
    project_name: service
    user_domain_name: Default
    project_domain_name: Default
    revocation_poll: 250ms
`, ks.AuthURL, pwFile)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// registerInCatalog makes kw the key-manager service of Keystone's catalog,
// with an unversioned URL as Barbican's installs do.
func registerInCatalog(t *testing.T, kw *testserver.Server) {
	ctx := context.Background()
	svc, err := services.Create(ctx, world.admin, services.CreateOpts{
		Type: "key-manager", Extra: map[string]any{"name": "barbican"},
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := endpoints.Create(ctx, world.admin, endpoints.CreateOpts{
		Availability: gophercloud.AvailabilityPublic, Region: "RegionOne", URL: kw.URL, ServiceID: svc.ID,
	}).Extract(); err != nil {
		t.Fatal(err)
	}
}

func TestKeystone(t *testing.T) {
	kw := startKeywarden(t)
	registerInCatalog(t, kw)
	// A token that will have expired by the last subtest.
	early, earlyExp := shortToken(t, "alice", 25*time.Second)
	earlyRef := storeSecret(t, kw, early, "stored-with-an-early-token")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("keywarden log:\n%s", kw.Log())
		}
	})
	if strings.Contains(kw.Log(), world.users["keywarden"].Password) {
		t.Fatal("the service user's password is in the server log")
	}
	t.Run("openstack CLI with password auth and the catalog", func(t *testing.T) { testCLI(t, kw) })
	t.Run("castellan BarbicanKeyManager", func(t *testing.T) { testCastellan(t) })
	t.Run("refusals", func(t *testing.T) { testRefusals(t, kw) })
	t.Run("JWT and Keystone side by side", func(t *testing.T) { testJWTAlongside(t, kw) })
	t.Run("32 concurrent first uses make one Keystone call", func(t *testing.T) { testSingleflight(t, kw) })
	t.Run("revoked token stops working within the revocation poll", func(t *testing.T) { testRevocation(t, kw) })
	t.Run("Keystone outage", func(t *testing.T) { testOutage(t, kw) })
	t.Run("expired user token with a service token", func(t *testing.T) { testExpired(t, early, earlyExp, earlyRef) })
	for _, u := range world.users {
		if strings.Contains(kw.Log(), u.Password) {
			t.Errorf("the password of %s is in the server log", u.Name)
		}
	}
}

// call makes one REST call with a Keystone token; extra is header pairs.
func call(t testing.TB, method, url, tok, body string, extra ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// storeSecret stores a text secret and returns its ref.
func storeSecret(t testing.TB, kw *testserver.Server, tok, payload string) string {
	t.Helper()
	code, body := call(t, "POST", kw.URL+"/v1/secrets", tok,
		fmt.Sprintf(`{"name":"k","payload":%q,"payload_content_type":"text/plain"}`, payload))
	if code != http.StatusCreated {
		t.Fatalf("store: %d %s", code, body)
	}
	var r struct {
		Ref string `json:"secret_ref"`
	}
	json.Unmarshal([]byte(body), &r)
	return r.Ref
}

// openstack runs the openstack CLI as name, signing in with its password
// (through the environment, not argv) and finding Keywarden in the catalog:
// no --os-endpoint.
func osc(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	return oscStdin(t, name, "", args...)
}

// oscStdin is osc with stdin; without args, openstack runs the commands it
// reads there.
func oscStdin(t testing.TB, name, stdin string, args ...string) (string, error) {
	u := world.users[name]
	cmd := exec.Command("openstack", args...)
	cmd.Stdin = strings.NewReader(stdin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "OS_AUTH_URL="+ks.AuthURL, "OS_IDENTITY_API_VERSION=3",
		"OS_USERNAME="+u.Name, "OS_PASSWORD="+u.Password, "OS_PROJECT_NAME="+u.Project,
		"OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default",
		"OS_REGION_NAME=RegionOne", "OS_INTERFACE=public")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func testCLI(t *testing.T, kw *testserver.Server) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Fatal("openstack is not installed: run `make deps` (python3-openstackclient)")
	}
	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("openstack: %v\n%s", err, out)
		}
		return out
	}
	start := time.Now()
	href := must(osc(t, "alice", "secret", "store", "--name", "cli-secret", "--payload", "cli-payload-1",
		"-f", "value", "-c", "Secret href"))
	if !strings.HasPrefix(href, kw.URL+"/v1/secrets/") {
		t.Fatalf("secret store answered %q, want a ref under %s", href, kw.URL)
	}
	bob := world.users["bob"]
	bobTok := token(t, "bob")
	if code, _ := call(t, "GET", href+"/payload", bobTok, "", "Accept", "text/plain"); code != http.StatusForbidden {
		t.Fatalf("bob before the ACL: %d, want 403", code)
	}
	// The next four in one openstack process, its interactive mode reading
	// them from stdin: one Python start-up (seconds) instead of four.
	script := strings.Join([]string{
		"secret get --payload -f value " + href,
		"secret list -f json", // (no quoting here: arguments split at spaces)
		// ACL: bob (another project) may read it once added as a user.
		"acl user add --user " + bob.ID + " " + href,
		"secret container create --name cli-container --type generic --secret one=" + href + " -f json",
	}, "\n") + "\n"
	out := must(oscStdin(t, "alice", script))
	if !strings.Contains(out, "cli-payload-1") {
		t.Fatalf("secret get --payload did not print the payload:\n%s", out)
	}
	if strings.Count(out, href) < 1 {
		t.Fatalf("secret list does not show %s:\n%s", href, out)
	}
	if !strings.Contains(out, kw.URL+"/v1/containers/") {
		t.Fatalf("container create printed no container ref:\n%s", out)
	}
	if code, body := call(t, "GET", href+"/payload", bobTok, "", "Accept", "text/plain"); code != http.StatusOK || body != "cli-payload-1" {
		t.Fatalf("bob after `acl user add`: %d %q", code, body)
	}
	must(osc(t, "alice", "secret", "delete", href))
	if code, _ := call(t, "GET", href, token(t, "alice"), ""); code != http.StatusNotFound {
		t.Fatalf("deleted secret: %d, want 404", code)
	}
	t.Logf("openstack CLI: 6 commands in 3 processes, %.1f s", time.Since(start).Seconds())
}

// castellanScript drives castellan's BarbicanKeyManager as Nova and Cinder
// do: KeystonePassword credentials, the endpoint from the catalog, and a
// service token next to the user's (send_service_user_token).
const castellanScript = `
import os, sys
from oslo_config import cfg
from castellan import key_manager
from castellan.common.credentials import keystone_password
from castellan.common.objects import passphrase, symmetric_key

conf = cfg.ConfigOpts()
conf(["--config-file", sys.argv[1]])
km = key_manager.API(conf)
ctx = keystone_password.KeystonePassword(
    os.environ["KW_PASSWORD"], auth_url=os.environ["KW_AUTH_URL"], username=os.environ["KW_USER"],
    user_domain_name="Default", project_name=os.environ["KW_PROJECT"], project_domain_name="Default")

kid = km.create_key(ctx, "AES", 256, name="castellan-key")
k = km.get(ctx, kid)
assert k.algorithm.upper() == "AES" and k.bit_length == 256 and len(k.get_encoded()) == 32, (k.algorithm, k.bit_length)
print("create_key", kid)

pid = km.store(ctx, passphrase.Passphrase("correct horse battery staple"))
p = km.get(ctx, pid)
# A passphrase is text: it comes back as Barbican gives it (text/plain).
assert p.get_encoded() in ("correct horse battery staple", b"correct horse battery staple"), p.get_encoded()
print("passphrase", pid)

raw = bytes(range(32))
sid = km.store(ctx, symmetric_key.SymmetricKey("AES", 256, raw))
s = km.get(ctx, sid)
assert s.get_encoded() == raw and s.bit_length == 256
print("symmetric", sid)

# create_key_pair: an asymmetric order and its rsa container.
from cryptography.hazmat.primitives import serialization
priv_id, pub_id = km.create_key_pair(ctx, "RSA", 2048, name="castellan-pair")
pk, pu = km.get(ctx, priv_id), km.get(ctx, pub_id)
assert pk.algorithm.upper() == "RSA" and pk.bit_length == 2048, (pk.algorithm, pk.bit_length)
k = serialization.load_der_private_key(pk.get_encoded(), password=None)
u = serialization.load_der_public_key(pu.get_encoded())
assert k.public_key().public_numbers() == u.public_numbers()
print("key_pair", priv_id, pub_id)

for i in (kid, pid, sid, priv_id, pub_id):
    km.delete(ctx, i)
try:
    km.get(ctx, kid)
    print("deleted key still readable"); sys.exit(1)
except Exception as e:
    print("gone", type(e).__name__)
print("OK")
`

func testCastellan(t *testing.T) {
	nova := world.users["nova"]
	conf := filepath.Join(t.TempDir(), "castellan.conf")
	body := fmt.Sprintf(`[key_manager]
backend = barbican
[barbican]
auth_endpoint = %[1]s
send_service_user_token = true
number_of_retries = 10
[barbican_service_user]
auth_type = password
auth_url = %[1]s
username = %[2]s
password = %[3]s
project_name = %[4]s
user_domain_name = Default
project_domain_name = Default
`, ks.AuthURL, nova.Name, nova.Password, nova.Project)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := world.users["alice"]
	before := ks.Requests("GET /v3/auth/tokens")
	start := time.Now()
	// Debian's castellan lives under the system interpreter.
	cmd := exec.Command("/usr/bin/python3", "-c", castellanScript, conf)
	cmd.Env = append(os.Environ(), "KW_PASSWORD="+alice.Password, "KW_AUTH_URL="+ks.AuthURL,
		"KW_USER="+alice.Name, "KW_PROJECT="+alice.Project)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("castellan: %v\n%s", err, out)
	}
	t.Logf("castellan: %.1f s\n%s", time.Since(start).Seconds(), out)
	// Two validations at least: alice's token and nova's service token.
	if n := ks.Requests("GET /v3/auth/tokens") - before; n < 2 {
		t.Errorf("castellan's requests made %d token validations; the service token was not checked", n)
	}
}

func testRefusals(t *testing.T, kw *testserver.Server) {
	alice, bob, rita := token(t, "alice"), token(t, "bob"), token(t, "rita")
	ref := storeSecret(t, kw, alice, "alpha-only")

	if code, body := call(t, "GET", ref+"/payload", alice, "", "Accept", "text/plain"); code != 200 || body != "alpha-only" {
		t.Fatalf("owner read: %d %q", code, body)
	}
	if code, _ := call(t, "GET", ref, bob, ""); code != http.StatusForbidden {
		t.Errorf("user of another project read the secret: %d, want 403", code)
	}
	if code, body := call(t, "POST", kw.URL+"/v1/secrets", rita, `{"name":"r","payload":"x","payload_content_type":"text/plain"}`); code != http.StatusForbidden {
		t.Errorf("reader stored a secret: %d %s", code, body)
	}
	for _, garbage := range []string{"gAAAAABnot-a-real-fernet-token", "not a token", strings.Repeat("A", 9000)} {
		code, body := call(t, "GET", kw.URL+"/v1/secrets", garbage, "")
		var eb struct{ Code int }
		if json.Unmarshal([]byte(body), &eb); code != http.StatusUnauthorized || eb.Code != 401 {
			t.Errorf("garbage token %.20q: %d %s, want 401 with a Barbican body", garbage, code, body)
		}
	}
	// A service acting for alice: a valid service token passes, a bad one
	// is refused even with a valid user token (keystonemiddleware's rule).
	nova := token(t, "nova")
	if code, _ := call(t, "GET", ref, alice, "", "X-Service-Token", nova); code != http.StatusOK {
		t.Errorf("user + service token: %d", code)
	}
	if code, _ := call(t, "GET", ref, alice, "", "X-Service-Token", "gAAAAABbogus"); code != http.StatusUnauthorized {
		t.Errorf("user + bogus service token: %d, want 401", code)
	}
	// A system-scoped token is valid but owns nothing here.
	sys := systemToken(t)
	if code, body := call(t, "GET", kw.URL+"/v1/secrets", sys, ""); code != http.StatusForbidden || !strings.Contains(body, "project-scoped") {
		t.Errorf("system-scoped token: %d %s, want 403", code, body)
	}
	// ... yet it is a valid service token, as keystonemiddleware takes any.
	if code, _ := call(t, "GET", ref, alice, "", "X-Service-Token", sys); code != http.StatusOK {
		t.Errorf("user + system-scoped service token: %d, want 200", code)
	}
}

func systemToken(t *testing.T) string {
	pc, err := openstack.NewClient(ks.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	tok, err := tokens.Create(context.Background(), sc, &tokens.AuthOptions{
		Username: "admin", Password: ks.AdminPassword, DomainName: "Default", Scope: tokens.Scope{System: true},
	}).ExtractTokenID()
	if err != nil {
		t.Fatalf("system-scoped token: %v", err)
	}
	return tok
}

// Keywarden's own JWTs keep working with Keystone on; each token goes by
// its form.
func testJWTAlongside(t *testing.T, kw *testserver.Server) {
	jwt := kw.Token(t, "jwt-project", "jwt-user", "creator")
	ref := storeSecret(t, kw, jwt, "from-a-jwt")
	if code, body := call(t, "GET", ref+"/payload", jwt, "", "Accept", "text/plain"); code != 200 || body != "from-a-jwt" {
		t.Fatalf("JWT read: %d %q", code, body)
	}
	if code, _ := call(t, "GET", ref, token(t, "alice"), ""); code != http.StatusForbidden {
		t.Errorf("Keystone user read a JWT project's secret: %d", code)
	}
}

func testSingleflight(t *testing.T, kw *testserver.Server) {
	alice := token(t, "alice")
	ref := storeSecret(t, kw, token(t, "alice"), "coalesced")
	before := ks.Requests("GET /v3/auth/tokens")
	var wg sync.WaitGroup
	codes := make([]int, 32)
	start := make(chan struct{})
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], _ = call(t, "GET", ref+"/payload", alice, "", "Accept", "text/plain")
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if n := ks.Requests("GET /v3/auth/tokens") - before; n != 1 {
		t.Fatalf("32 concurrent first uses of one token made %d Keystone validations, want 1", n)
	}
}

func testRevocation(t *testing.T, kw *testserver.Server) {
	alice := token(t, "alice")
	ref := storeSecret(t, kw, alice, "revocable") // now cached (300 s by default)
	before := ks.Requests("GET /v3/auth/tokens")
	if code, _ := call(t, "GET", ref, alice, ""); code != http.StatusOK {
		t.Fatalf("before revocation: %d", code)
	}
	if n := ks.Requests("GET /v3/auth/tokens") - before; n != 0 {
		t.Fatalf("a cached token was validated again (%d calls): the test would not show revocation beats the cache", n)
	}
	if err := tokens.Revoke(context.Background(), world.admin, alice).Err; err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		code, body := call(t, "GET", ref, alice, "")
		if code == http.StatusUnauthorized {
			break
		}
		if code != http.StatusOK {
			t.Fatalf("while waiting for the revocation: %d %s", code, body)
		}
		if time.Since(revoked) > 10*time.Second {
			t.Fatal("a token revoked in Keystone still works after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	delay := time.Since(revoked)
	fmt.Printf("keystone: revoked token refused %.2f s after `token revoke` (cache_seconds 300, revocation_poll 250ms)\n", delay.Seconds())
	if delay > 1500*time.Millisecond { // the configured poll, not the 2 s default, bounds it
		t.Errorf("revoked token refused after %s with revocation_poll 250ms", delay)
	}
	t.Logf("revoked token refused after %.2f s", delay.Seconds())
	// The user's other tokens are untouched.
	if code, _ := call(t, "GET", ref, token(t, "alice"), ""); code != http.StatusOK {
		t.Errorf("a fresh token after the revocation: %d", code)
	}
}

func testOutage(t *testing.T, kw *testserver.Server) {
	cached := token(t, "alice")
	ref := storeSecret(t, kw, cached, "outage")
	uncached := token(t, "bob")
	ks.Stop()
	resumed := false
	defer func() {
		if !resumed {
			ks.Resume()
		}
	}()
	if code, body := call(t, "GET", ref+"/payload", cached, "", "Accept", "text/plain"); code != http.StatusOK || body != "outage" {
		t.Errorf("cached token with Keystone down: %d %q, want 200", code, body)
	}
	start := time.Now()
	code, body := call(t, "GET", kw.URL+"/v1/secrets", uncached, "")
	var eb struct {
		Code        int    `json:"code"`
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal([]byte(body), &eb); code != http.StatusServiceUnavailable || err != nil || eb.Code != 503 || eb.Title == "" {
		t.Errorf("uncached token with Keystone down: %d %s, want 503 with a Barbican error body", code, body)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("the 503 took %v", d)
	}
	if err := ks.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if code, _ := call(t, "GET", kw.URL+"/v1/secrets", uncached, ""); code != http.StatusOK {
		t.Errorf("Keystone back: the uncached token got %d", code)
	}
	if code, _ := call(t, "GET", ref, token(t, "alice"), ""); code != http.StatusOK {
		t.Errorf("Keystone back: a new token got %d", code)
	}
}

// The bench's Keystone mode: GET payload throughput with a (cached) Keystone
// token against the same with a JWT. A short smoke run by default;
// KEYWARDEN_BENCH_DURATION=10s gives the figures of docs/BENCHMARKS.md.
func TestBenchKeystoneVsJWT(t *testing.T) {
	d := os.Getenv("KEYWARDEN_BENCH_DURATION")
	if d == "" {
		d = "1s"
	}
	cfg := keywardenConfig(t)
	alice := world.users["alice"]
	run := func(keystone bool) float64 {
		args := []string{"bench", "--clients", "32", "--duration", d, "--ops", "create,get", "--server-config", cfg}
		cmd := exec.Command(testserver.Binary(t), args...)
		cmd.Env = os.Environ()
		if keystone {
			cmd.Args = append(cmd.Args, "--keystone")
			cmd.Env = append(cmd.Env, "OS_AUTH_URL="+ks.AuthURL, "OS_USERNAME="+alice.Name, "OS_PASSWORD="+alice.Password,
				"OS_PROJECT_NAME="+alice.Project, "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bench (keystone %v): %v\n%s", keystone, err, out)
		}
		t.Logf("bench (keystone %v):\n%s", keystone, out)
		var ops float64
		for line := range strings.SplitSeq(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == "get" {
				if f[2] != "0" {
					t.Errorf("bench get (keystone %v): %s errors\n%s", keystone, f[2], out)
				}
				fmt.Sscan(f[3], &ops)
			}
		}
		if ops == 0 {
			t.Fatalf("bench (keystone %v) printed no get figure:\n%s", keystone, out)
		}
		return ops
	}
	jwt, ksOps := run(false), run(true)
	fmt.Printf("keystone: bench get payload, 32 clients, %s: JWT %.0f/s, Keystone %.0f/s (%.0f%%)\n", d, jwt, ksOps, 100*ksOps/jwt)
}

// A service acting for a user whose token expired meanwhile (a long volume
// operation): with a service token holding the service role the request
// still goes through, as keystonemiddleware allows; without one, or with a
// token lacking that role, it does not.
func testExpired(t *testing.T, tok string, exp time.Time, ref string) {
	if wait := time.Until(exp.Add(2 * time.Second)); wait > 0 {
		t.Logf("waiting %.1f s for the user token to expire", wait.Seconds())
		time.Sleep(wait)
	}
	if code, _ := call(t, "GET", ref, tok, ""); code != http.StatusUnauthorized {
		t.Errorf("expired token alone: %d, want 401", code)
	}
	if code, _ := call(t, "GET", ref, tok, "", "X-Service-Token", token(t, "rita")); code != http.StatusUnauthorized {
		t.Errorf("expired token + a token without the service role: %d, want 401", code)
	}
	code, body := call(t, "GET", ref+"/payload", tok, "", "X-Service-Token", token(t, "nova"), "Accept", "text/plain")
	if code != http.StatusOK || body != "stored-with-an-early-token" {
		t.Errorf("expired token + service token: %d %q, want 200", code, body)
	}
}
