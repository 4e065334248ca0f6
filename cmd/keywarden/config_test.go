package main

import (
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
		"auth:\n  disable_hmac: true\n":                        "public_keys",
		"max_payload: -5\n":                                    "max_payload",
		"passphrase:\n  alphabet: \"aa\"\n":                    "passphrase",
		"store:\n  path: /tmp/x\n  extra: 1\n":                 "extra",
		"quotas:\n  volumes: 3\n":                              "volumes",
		"audit:\n  max_bytes: -1\n":                            "max_bytes",
		"orphans:\n  grace: -1h\n":                             "orphans",
		"orphans:\n  collect_every: soon\n":                    "soon", // yaml names the line and the value
		"auth:\n  keystone:\n    auth_url: http://k:5000/v3\n": "username",
		"auth:\n  keystone:\n    auth_url: http://k\n    username: u\n    password_file: /p\n    project_name: s\n    cache_seconds: -1\n": "cache_seconds",
		"auth:\n  keystone:\n    authurl: http://k\n": "authurl",
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
		c.Orphans.CollectEvery != time.Hour || c.Metrics.Addr == "" || !c.Auth.DisableHMAC {
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
		c.Auth.Keystone.enabled() || c.Auth.Keystone.CacheSeconds != 300 {
		t.Fatalf("example config: %+v", c)
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
