package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kw.yaml")
	os.WriteFile(path, []byte("data_dir: "+dir+"\nrest:\n  addr: 127.0.0.1:19311\n  max_body: 4096\npassphrase:\n  length: 64\n"), 0o600)
	c := defaultConfig()
	if err := c.load(path); err != nil {
		t.Fatal(err)
	}
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	if c.REST.Addr != "127.0.0.1:19311" || c.REST.MaxBody != 4096 || c.passphrasePolicy().Length != 64 {
		t.Fatalf("file values not applied: %+v", c.REST)
	}
	if c.Store.Path != filepath.Join(dir, "keywarden.db") || c.RootKey != filepath.Join(dir, "root.key") {
		t.Fatalf("derived paths: %s %s", c.Store.Path, c.RootKey)
	}
	if c.KMIP.Addr == "" {
		t.Fatal("KMIP default address lost when the file has no kmip section")
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for body, want := range map[string]string{
		"rest:\n  adress: x\n":                                 "adress",
		"log_level: loud\n":                                    "log_level",
		"rest:\n  max_body: -1\n":                              "max_body",
		"passphrase:\n  length: 3\n":                           "passphrase",
		"rest:\n  tls_cert: a.pem\n":                           "tls_key",
		"auth:\n  insecure_noauth: true\n":                     "--insecure-noauth",
		"auth:\n  insecure_noauth: false\n":                    "--insecure-noauth",
		"auth:\n  disable_hmac: true\n":                        "auth.jwt.allow_hmac",
		"auth:\n  issuer: x\n":                                 "auth.jwt.issuer",
		"auth:\n  public_keys: []\n":                           "auth.jwt.public_keys",
		"auth:\n  jwt:\n    max_lifetime: 0s\n":                "max_lifetime",
		"auth:\n  jwt:\n    max_lifetime: -1h\n":               "max_lifetime",
		"auth:\n  jwt:\n    lifetime: 1h\n":                    "lifetime",
		"max_payload: -5\n":                                    "max_payload",
		"passphrase:\n  alphabet: \"aa\"\n":                    "passphrase",
		"store:\n  path: /tmp/x\n  extra: 1\n":                 "extra",
		"store:\n  map_budget: -2\n":                           "map_budget",
		"quotas:\n  volumes: 3\n":                              "volumes",
		"audit:\n  max_bytes: -1\n":                            "max_bytes",
		"orphans:\n  grace: -1h\n":                             "orphans",
		"orphans:\n  collect_every: soon\n":                    "soon", // yaml names the line and the value
		"auth:\n  keystone:\n    auth_url: http://k:5000/v3\n": "username",
		"auth:\n  keystone:\n    auth_url: http://k\n    username: u\n    password_file: /p\n    project_name: s\n    cache_seconds: -1\n": "cache_seconds",
		"auth:\n  keystone:\n    authurl: http://k\n": "authurl",
		"auth:\n  keystone:\n    auth_url: http://k\n    username: u\n    password_file: /p\n    project_name: s\n    revocation_poll: 1ms\n": "revocation_poll",
	} {
		path := filepath.Join(t.TempDir(), "kw.yaml")
		os.WriteFile(path, []byte(body), 0o600)
		c := defaultConfig()
		err := c.load(path)
		if err == nil {
			err = c.finish()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: want an error naming %q, got %v", body, want, err)
		}
	}
}

// The cluster example must stay loadable and mean what it says.
func TestClusterExampleLoads(t *testing.T) {
	c := defaultConfig()
	if err := c.load("../../deploy/keywarden-cluster.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	if c.Store.Backend != "etcd" || c.MasterKey.Type != "transit" || c.MasterKey.Transit.TokenFile == "" ||
		c.Orphans.CollectEvery != time.Hour || c.Metrics.Addr == "" || c.Auth.JWT.hmacOn() ||
		c.Auth.JWT.Issuer == "" || c.Auth.JWT.Audience == "" || c.Auth.JWT.MaxLifetime != 8*time.Hour {
		t.Fatalf("cluster example loaded as %+v", c)
	}
}

// The documented example must stay loadable: it lists every key.
func TestDeployExampleLoads(t *testing.T) {
	c := defaultConfig()
	if err := c.load("../../deploy/keywarden.yaml"); err != nil {
		t.Fatal(err)
	}
	c.DataDir = t.TempDir()
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	if c.KMIP.Addr != "127.0.0.1:5696" || c.REST.Addr != "127.0.0.1:9311" || c.Store.Backend != "bolt" ||
		c.Auth.JWT.MaxLifetime != 24*time.Hour || !c.Auth.JWT.hmacOn() ||
		c.Auth.Keystone.enabled() || c.Auth.Keystone.CacheSeconds != 300 {
		t.Fatalf("example config: %+v", c)
	}
	// The caps and timeouts it shows are the defaults.
	d := defaultKMIPOptions()
	got, want := c.KMIP, d
	got.Hosts, got.ClientCAs, got.Mappings = nil, nil, nil
	if fmt.Sprint(got) != fmt.Sprint(want) || c.REST.LegacyCipherSuites {
		t.Fatalf("documented kmip section %+v, defaults %+v", got, want)
	}
}

// Caps and timeouts must be positive: a zero would silently mean the
// default inside the server.
func TestKMIPLimitsChecked(t *testing.T) {
	for _, bad := range []string{"max_batch_items: 0", "max_connections: -1", "max_connections_per_source: 0",
		"handshake_timeout: 0s", "max_connections: 10\n  max_connections_per_source: 20", "server_cert_validity: 0",
		"tls_profile: suiteb-256", "tls_profile: suiteb-128\n  legacy_cipher_suites: true", "ca_key_type: dsa",
		"tls_profile: suiteb-192\n  ca_key_type: rsa"} {
		f := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(f, []byte("kmip:\n  "+bad+"\n"), 0o600)
		c := defaultConfig()
		if err := c.load(f); err != nil {
			t.Fatal(err)
		}
		c.DataDir = t.TempDir()
		if err := c.finish(); err == nil || !strings.Contains(err.Error(), "kmip.") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

// A plain http:// etcd endpoint on another host is refused unless allowed.
func TestEtcdPlainHTTPRefused(t *testing.T) {
	load := func(body string) error {
		f := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(f, []byte("store:\n  backend: etcd\n  etcd:\n"+body), 0o600)
		c := defaultConfig()
		if err := c.load(f); err != nil {
			t.Fatal(err)
		}
		c.DataDir = t.TempDir()
		return c.finish()
	}
	if err := load("    endpoints: [http://10.0.0.1:2379]\n"); err == nil || !strings.Contains(err.Error(), "allow_insecure_http") {
		t.Fatalf("plain http to another host: %v", err)
	}
	if err := load("    endpoints: [http://10.0.0.1:2379]\n    allow_insecure_http: true\n"); err != nil {
		t.Fatal(err)
	}
	if err := load("    endpoints: [http://127.0.0.1:2379]\n"); err != nil {
		t.Fatal(err)
	}
	if err := load("    endpoints: [https://10.0.0.1:2379]\n    cert_file: c.pem\n"); err == nil {
		t.Fatal("cert_file without key_file accepted")
	}
}

// A file that sets one auth.jwt key keeps the others' defaults.
func TestJWTDefaultsSurviveThePartialSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kw.yaml")
	os.WriteFile(path, []byte("auth:\n  jwt:\n    issuer: https://idp.example\n"), 0o600)
	c := defaultConfig()
	c.DataDir = t.TempDir()
	if err := c.load(path); err != nil {
		t.Fatal(err)
	}
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	if j := c.Auth.JWT; j.Issuer != "https://idp.example" || j.MaxLifetime != 24*time.Hour ||
		j.HMACSecretFile != filepath.Join(c.DataDir, "token.key") || !j.hmacOn() || j.mintIssuer() != j.Issuer {
		t.Fatalf("auth.jwt: %+v", j)
	}
	c.Auth.JWT.PublicKeys = []string{"idp.pem"}
	if c.Auth.JWT.hmacOn() {
		t.Fatal("the development key stays on beside public keys")
	}
	c.Auth.JWT.AllowHMAC = true
	if !c.Auth.JWT.hmacOn() {
		t.Fatal("allow_hmac: true does not turn the development key on")
	}
	// Keystone makes a production server too: the development key is off
	// there unless allowed, public keys or not.
	c.Auth.JWT.PublicKeys, c.Auth.JWT.AllowHMAC = nil, false
	if !c.devTokensOn() {
		t.Fatal("make run's development key is off")
	}
	c.Auth.Keystone.AuthURL = "http://keystone.example:5000/v3"
	if c.devTokensOn() {
		t.Fatal("the development key stays on beside Keystone")
	}
	c.Auth.JWT.AllowHMAC = true
	if !c.devTokensOn() {
		t.Fatal("allow_hmac: true does not turn the development key on beside Keystone")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9311": true, "127.1.2.3:0": true, "[::1]:9311": true, "localhost:9311": true, "LocalHost:1": true,
		":9311": false, "0.0.0.0:9311": false, "[::]:9311": false, "10.0.0.5:9311": false, "kms.example:9311": false,
		"": false, "127.0.0.1": false, "[::ffff:10.0.0.1]:1": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestNoAuthOnlyOnLoopback(t *testing.T) {
	for name, tc := range map[string]struct {
		set  func(*config)
		want string // "" = accepted
	}{
		"defaults":          {func(*config) {}, ""},
		"KMIP off":          {func(c *config) { c.KMIP.Addr = "" }, ""},
		"REST on all":       {func(c *config) { c.REST.Addr = ":9311" }, `":9311"`},
		"REST on 0.0.0.0":   {func(c *config) { c.REST.Addr = "0.0.0.0:9311" }, `"0.0.0.0:9311"`},
		"KMIP on ::":        {func(c *config) { c.KMIP.Addr = "[::]:5696" }, `"[::]:5696"`},
		"metrics on a NIC":  {func(c *config) { c.Metrics.Addr = "10.1.2.3:9312" }, `"10.1.2.3:9312"`},
		"metrics localhost": {func(c *config) { c.Metrics.Addr = "localhost:9312" }, ""},
		"REST empty":        {func(c *config) { c.REST.Addr = "" }, "REST"},
	} {
		c := defaultConfig()
		c.DataDir = t.TempDir()
		c.Auth.InsecureNoAuth = true
		tc.set(&c)
		err := c.finish()
		if tc.want == "" && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--insecure-noauth")) {
			t.Errorf("%s: want a refusal naming %s, got %v", name, tc.want, err)
		}
		c.Auth.InsecureNoAuth = false
		if err := c.finish(); err != nil {
			t.Errorf("%s without --insecure-noauth: %v", name, err)
		}
	}
}

// Keystone's cache time defaults to keystonemiddleware's 300 s; an explicit
// 0 turns the cache off rather than falling back to the default.
func TestKeystoneCacheSeconds(t *testing.T) {
	for body, want := range map[string]int{
		"auth:\n  keystone:\n    username: u\n":       300,
		"auth:\n  keystone:\n    cache_seconds: 0\n":  0,
		"auth:\n  keystone:\n    cache_seconds: 30\n": 30,
	} {
		path := filepath.Join(t.TempDir(), "kw.yaml")
		os.WriteFile(path, []byte(body), 0o600)
		c := defaultConfig()
		if err := c.load(path); err != nil {
			t.Fatal(err)
		}
		if got := c.Auth.Keystone.CacheSeconds; got != want {
			t.Errorf("%q: cache_seconds %d, want %d", body, got, want)
		}
	}
}

// The password file must be 0600: serve refuses to start otherwise, and
// says so without showing the password.
func TestKeystonePasswordFileMode(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret-pass\n"), 0o644)
	k := keystoneConfig{AuthURL: "http://127.0.0.1:1/v3", Username: "kw", PasswordFile: pw, ProjectName: "service", CacheSeconds: 0}
	_, err := k.validator(nil)
	if err == nil || !strings.Contains(err.Error(), "0600") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("0644 password file: %v", err)
	}
	os.Chmod(pw, 0o600)
	v, err := k.validator(nil)
	if err != nil {
		t.Fatalf("0600 password file refused: %v", err)
	}
	v.Close()
}
