package crypto

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keywarden/keywarden/tests/vaulttest"
)

// The tests named TestTransitVault* run against a real Vault server binary
// (tests/vaulttest).

type vaultServer struct{ *vaulttest.Server }

func startVault(t *testing.T, withTLS bool) *vaultServer {
	return &vaultServer{vaulttest.Start(t, withTLS)}
}

func (s *vaultServer) newKey(t *testing.T, typ string) string { return s.NewKey(t, typ) }

func (s *vaultServer) config(key string) TransitConfig {
	return TransitConfig{Address: s.Addr, Token: s.Token, Key: key, CAFile: s.CAFile, Timeout: 10 * time.Second}
}

func (s *vaultServer) transitKey(t *testing.T, key string) *TransitKey {
	t.Helper()
	k, err := NewTransitKey(s.config(key))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randKEK() []byte {
	b := make([]byte, keySize)
	rand.Read(b)
	return b
}

// noSecrets fails if err's text contains any of the secrets.
func noSecrets(t *testing.T, err error, secrets ...[]byte) {
	t.Helper()
	for _, s := range secrets {
		if len(s) > 0 && (strings.Contains(err.Error(), string(s)) || strings.Contains(err.Error(), hex.EncodeToString(s))) {
			t.Fatalf("error leaks a secret: %v", err)
		}
	}
}

func TestTransitVault(t *testing.T) {
	s := startVault(t, false)
	aad := kekAAD("proj-a")

	t.Run("RoundTrip", func(t *testing.T) {
		key := s.newKey(t, "aes256-gcm96")
		k := s.transitKey(t, key)
		if k.ID() != "transit:transit/"+key {
			t.Fatalf("ID %q", k.ID())
		}
		kek := randKEK()
		w, err := k.Wrap(ctx, kek, aad)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(w, []byte("vault:v1:")) || bytes.Contains(w, kek) {
			t.Fatalf("wrapped %q", w)
		}
		got, err := k.Unwrap(ctx, w, aad)
		if err != nil || !bytes.Equal(got, kek) {
			t.Fatalf("unwrap: %v", err)
		}
		if err := k.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
		// Empty plaintext and empty AAD are valid too.
		w, err = k.Wrap(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Unwrap(ctx, w, nil); err != nil || len(got) != 0 {
			t.Fatalf("empty: %q %v", got, err)
		}
	})

	t.Run("WrongAAD", func(t *testing.T) {
		k := s.transitKey(t, s.newKey(t, "aes256-gcm96"))
		kek := randKEK()
		w, err := k.Wrap(ctx, kek, aad)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range [][]byte{kekAAD("proj-b"), nil, append(bytes.Clone(aad), 0)} {
			_, err = k.Unwrap(ctx, w, bad)
			if err == nil {
				t.Fatalf("unwrapped with AAD %q", bad)
			}
			noSecrets(t, err, kek, []byte(s.Token))
		}
		t.Logf("wrong AAD: %v", err)
	})

	t.Run("Tampered", func(t *testing.T) {
		k := s.transitKey(t, s.newKey(t, "aes256-gcm96"))
		kek := randKEK()
		w, err := k.Wrap(ctx, kek, aad)
		if err != nil {
			t.Fatal(err)
		}
		flip := bytes.Clone(w)
		i := len("vault:v1:") + 20
		flip[i] ^= 'A' ^ 'B' // A<->B keeps it valid base64, changes a bit
		if flip[i] == w[i] || !validTransitCiphertext(flip) {
			flip[i] = 'A'
		}
		cases := map[string][]byte{
			"bit flip":      flip,
			"truncated":     w[:len(w)-8],
			"wrong version": bytes.Replace(w, []byte("vault:v1:"), []byte("vault:v7:"), 1),
			"not transit":   []byte("hello"),
			"empty":         nil,
			"json breakout": []byte(`vault:v1:AAAA","plaintext":"x`),
		}
		for name, c := range cases {
			if _, err := k.Unwrap(ctx, c, aad); err == nil {
				t.Fatalf("%s: unwrapped", name)
			} else {
				noSecrets(t, err, kek, []byte(s.Token))
			}
		}
	})

	t.Run("KeyRotation", func(t *testing.T) {
		key := s.newKey(t, "aes256-gcm96")
		k := s.transitKey(t, key)
		kek := randKEK()
		old, err := k.Wrap(ctx, kek, aad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Admin.Logical().Write("transit/keys/"+key+"/rotate", nil); err != nil {
			t.Fatalf("rotate: %v", err)
		}
		if got, err := k.Unwrap(ctx, old, aad); err != nil || !bytes.Equal(got, kek) {
			t.Fatalf("v1 ciphertext after rotation: %v", err)
		}
		nw, err := k.Wrap(ctx, kek, aad)
		if err != nil || !bytes.HasPrefix(nw, []byte("vault:v2:")) {
			t.Fatalf("wrap after rotation: %q %v", nw, err)
		}
		if k.ID() != "transit:transit/"+key {
			t.Fatalf("ID changed with the key version: %q", k.ID())
		}
		// Once Vault stops accepting v1, old ciphertexts fail clearly.
		if _, err := s.Admin.Logical().Write("transit/keys/"+key+"/config", map[string]any{"min_decryption_version": 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Unwrap(ctx, old, aad); err == nil {
			t.Fatal("v1 unwrapped below min_decryption_version")
		} else {
			t.Logf("below min_decryption_version: %v", err)
		}
	})

	t.Run("Keyring", func(t *testing.T) {
		key := s.newKey(t, "aes256-gcm96")
		tk := s.transitKey(t, key)
		st := newMemKEKStore()
		kr := NewKeyring(tk, st)
		e := mustSeal(t, kr, bind, []byte("sealed under a Vault-wrapped KEK"))
		if id, err := WrappedKEKMasterID(st.get(bind.Project)); err != nil || id != tk.ID() {
			t.Fatalf("stored KEK master id %q %v", id, err)
		}
		// A second process (fresh key object, cold cache) opens it.
		if got := mustOpen(t, NewKeyring(s.transitKey(t, key), st), bind, e); string(got) != "sealed under a Vault-wrapped KEK" {
			t.Fatalf("got %q", got)
		}
		// Moving a project from the local root key to Transit is a rewrap.
		rk := testRootKey(t)
		st2 := newMemKEKStore()
		e2 := mustSeal(t, NewKeyring(rk, st2), bind, []byte("migrated"))
		nw, err := RewrapKEK(ctx, rk, tk, bind.Project, st2.get(bind.Project))
		if err != nil {
			t.Fatal(err)
		}
		st2.set(bind.Project, nw)
		if got := mustOpen(t, NewKeyring(tk, st2), bind, e2); string(got) != "migrated" {
			t.Fatalf("after migration: %q", got)
		}
	})

	t.Run("TokenFileAndPolicy", func(t *testing.T) {
		key := s.newKey(t, "aes256-gcm96")
		// The least a keywarden token needs: update on encrypt and decrypt.
		policy := fmt.Sprintf(`path "transit/encrypt/%s" { capabilities = ["update"] }
path "transit/decrypt/%s" { capabilities = ["update"] }`, key, key)
		if err := s.Admin.Sys().PutPolicy("kw-"+key, policy); err != nil {
			t.Fatal(err)
		}
		sec, err := s.Admin.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"kw-" + key}, NoDefaultPolicy: true})
		if err != nil {
			t.Fatal(err)
		}
		tok := sec.Auth.ClientToken
		path := filepath.Join(t.TempDir(), "token")
		os.WriteFile(path, []byte(tok+"\n"), 0o640)

		cfg := s.config(key)
		cfg.Token, cfg.TokenFile = "", path
		k, err := NewTransitKey(cfg)
		if err != nil {
			t.Fatal(err)
		}
		kek := randKEK()
		w, err := k.Wrap(ctx, kek, aad)
		if err != nil {
			t.Fatalf("wrap with policy token: %v", err)
		}
		// The file is re-read: a replaced token takes effect on the next call.
		os.WriteFile(path, []byte("hvs.not-a-valid-token"), 0o640)
		_, err = k.Unwrap(ctx, w, aad)
		if err == nil || !strings.Contains(err.Error(), "403") || !errors.Is(err, ErrMasterUnavailable) {
			t.Fatalf("bad token: %v", err)
		}
		noSecrets(t, err, kek, []byte(tok), []byte("hvs.not-a-valid-token"))
		// An expired token is the same: unavailable (503), not internal.
		short, err := s.Admin.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"kw-" + key}, NoDefaultPolicy: true, TTL: "1s"})
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path, []byte(short.Auth.ClientToken), 0o640)
		time.Sleep(2500 * time.Millisecond)
		if _, err = k.Unwrap(ctx, w, aad); !errors.Is(err, ErrMasterUnavailable) {
			t.Fatalf("expired token: %v", err)
		}
		os.WriteFile(path, []byte(tok), 0o640)
		if got, err := k.Unwrap(ctx, w, aad); err != nil || !bytes.Equal(got, kek) {
			t.Fatalf("restored token: %v", err)
		}
		// The policy does not reach other keys.
		other, _ := NewTransitKey(TransitConfig{Address: s.Addr, TokenFile: path, Key: s.newKey(t, "aes256-gcm96")})
		if _, err := other.Wrap(ctx, kek, aad); err == nil {
			t.Fatal("policy token wrapped with another key")
		}
		// A world-readable token file is refused.
		os.Chmod(path, 0o644)
		if _, err := k.Wrap(ctx, kek, aad); err == nil || !strings.Contains(err.Error(), "mode") {
			t.Fatalf("world-readable token file: %v", err)
		} else {
			noSecrets(t, err, []byte(tok))
		}
	})

	t.Run("NonAEADKeyRefused", func(t *testing.T) {
		k := s.transitKey(t, s.newKey(t, "rsa-2048"))
		err := k.Check(ctx)
		if err == nil {
			t.Fatal("Check accepted an RSA key, which ignores the AAD")
		}
		t.Logf("rsa key: %v", err)
	})

	t.Run("MissingKey", func(t *testing.T) {
		k := s.transitKey(t, "no-such-key")
		if _, err := k.Unwrap(ctx, []byte("vault:v1:AAAA"), aad); err == nil {
			t.Fatal("decrypt with a missing key")
		} else {
			t.Logf("missing key: %v", err)
		}
	})

	t.Run("RetriesTransient", func(t *testing.T) {
		// A proxy in front of the real server fails the first two requests
		// with 503, as a standby or sealed node would.
		target, _ := url.Parse(s.Addr)
		rp := httputil.NewSingleHostReverseProxy(target)
		var n atomic.Int32
		px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) <= 2 {
				http.Error(w, `{"errors":["Vault is sealed"]}`, http.StatusServiceUnavailable)
				return
			}
			rp.ServeHTTP(w, r)
		}))
		defer px.Close()
		cfg := s.config(s.newKey(t, "aes256-gcm96"))
		cfg.Address = px.URL
		k, err := NewTransitKey(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Check(ctx); err != nil {
			t.Fatalf("after two 503s: %v", err)
		}
		if got := n.Load(); got != 4 { // 2 failures, then encrypt and decrypt
			t.Fatalf("%d requests", got)
		}
		// Errors that retrying cannot fix (400) are not retried.
		n.Store(10)
		_, err = k.Unwrap(ctx, []byte("vault:v1:AAAA"), aad)
		if err == nil {
			t.Fatal("bad ciphertext unwrapped")
		}
		if got := n.Load(); got != 11 {
			t.Fatalf("a 400 was retried: %d requests", got-10)
		} else if errors.Is(err, ErrMasterUnavailable) {
			t.Fatalf("a 400 reads as the master key being unavailable: %v", err)
		}
		// A server that stays sealed: unavailable, after the retries.
		n.Store(-100)
		if _, err := k.Wrap(ctx, randKEK(), aad); !errors.Is(err, ErrMasterUnavailable) || !strings.Contains(err.Error(), "HTTP 503") {
			t.Fatalf("sealed Vault: %v", err)
		}
	})
}

func TestTransitVaultTLS(t *testing.T) {
	s := startVault(t, true)
	k := s.transitKey(t, s.newKey(t, "aes256-gcm96"))
	if err := k.Check(ctx); err != nil {
		t.Fatalf("over TLS with ca_file: %v", err)
	}
	// Without the CA the server is not trusted, and that is not retried.
	cfg := s.config("whatever")
	cfg.CAFile = ""
	k2, err := NewTransitKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = k2.Wrap(ctx, randKEK(), nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("certificate error took %v (retried?)", d)
	}
	// VAULT_SKIP_VERIFY in the environment does not switch verification off.
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	k3, err := NewTransitKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k3.Wrap(ctx, randKEK(), nil); err == nil {
		t.Fatal("VAULT_SKIP_VERIFY disabled certificate checks")
	}
}

// The tests below need no server: they check configuration and how failures
// to reach one end.

func TestTransitServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close() // nothing listens there now: connection refused

	k, err := NewTransitKey(TransitConfig{Address: addr, Token: "s.secret-token-value", Key: "kw", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	kek := randKEK()
	start := time.Now()
	_, err = k.Wrap(ctx, kek, []byte("aad"))
	d := time.Since(start)
	if err == nil {
		t.Fatal("wrapped with no server")
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), addr) || !errors.Is(err, ErrMasterUnavailable) {
		t.Fatalf("unclear error: %v", err)
	}
	noSecrets(t, err, kek, []byte("s.secret-token-value"))
	// Retried with backoff (about 1.5s in all), but well inside the timeout.
	if d < 200*time.Millisecond || d > 4*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	t.Logf("server down, after %v: %v", d.Round(time.Millisecond), err)
}

func TestTransitServerHangs(t *testing.T) {
	// Accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	k, err := NewTransitKey(TransitConfig{Address: "http://" + l.Addr().String(), Token: "t", Key: "kw", Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = k.Unwrap(ctx, []byte("vault:v1:AAAA"), nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("hung for %v", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrMasterUnavailable) {
		t.Fatalf("want a deadline error, master key unavailable, got %v", err)
	}
	// The caller's context bounds a call too.
	k2, _ := NewTransitKey(TransitConfig{Address: "http://" + l.Addr().String(), Token: "t", Key: "kw"})
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := k2.Wrap(cctx, []byte("x"), nil); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("caller deadline: %v after %v", err, time.Since(start))
	}
}

func TestTransitConfig(t *testing.T) {
	good := TransitConfig{Address: "https://vault.example:8200", Token: "tok", Key: "keywarden"}
	k, err := NewTransitKey(good)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != "transit:transit/keywarden" {
		t.Fatalf("ID %q", k.ID())
	}
	ns := good
	ns.Namespace, ns.Mount = "team-a/", "kms/transit"
	if k, err := NewTransitKey(ns); err != nil || k.ID() != "transit:team-a/kms/transit/keywarden" {
		t.Fatalf("namespaced: %v", err)
	}

	tokFile := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tokFile, []byte("tok"), 0o600)
	bad := map[string]func(*TransitConfig){
		"no address":       func(c *TransitConfig) { c.Address = "" },
		"remote http":      func(c *TransitConfig) { c.Address = "http://vault.example:8200" },
		"ftp":              func(c *TransitConfig) { c.Address = "ftp://vault.example" },
		"no key":           func(c *TransitConfig) { c.Key = "" },
		"key with slash":   func(c *TransitConfig) { c.Key = "a/b" },
		"key dotdot":       func(c *TransitConfig) { c.Key = "a..b" },
		"mount dotdot":     func(c *TransitConfig) { c.Mount = "transit/../sys" },
		"mount query":      func(c *TransitConfig) { c.Mount = "transit?x=1" },
		"no token":         func(c *TransitConfig) { c.Token = "" },
		"both tokens":      func(c *TransitConfig) { c.TokenFile = tokFile },
		"missing tokfile":  func(c *TransitConfig) { c.Token, c.TokenFile = "", tokFile+".none" },
		"negative timeout": func(c *TransitConfig) { c.Timeout = -time.Second },
		"missing CA":       func(c *TransitConfig) { c.CAFile = tokFile + ".none" },
		"CA not PEM":       func(c *TransitConfig) { c.CAFile = tokFile },
		"ID too long":      func(c *TransitConfig) { c.Key = strings.Repeat("k", 250) },
	}
	for name, mutate := range bad {
		c := good
		mutate(&c)
		if _, err := NewTransitKey(c); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "tok\"") {
			t.Errorf("%s: error shows the token: %v", name, err)
		}
	}
	for _, a := range []string{"http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200", "unix:///run/vault-agent.sock"} {
		c := good
		c.Address = a
		if _, err := NewTransitKey(c); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	// Formatting a config never shows the token.
	c := good
	c.Token = "hvs.very-secret"
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", &c)} {
		if strings.Contains(s, "very-secret") {
			t.Fatalf("config formatting shows the token: %s", s)
		}
	}
}

func TestTransitIgnoresVaultEnv(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "env-token")
	t.Setenv("VAULT_NAMESPACE", "env-ns")
	var gotToken, gotNS string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotToken, gotNS = r.Header.Get("X-Vault-Token"), r.Header.Get("X-Vault-Namespace")
		http.Error(w, `{"errors":["test"]}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	k, err := NewTransitKey(TransitConfig{Address: srv.URL, Token: "cfg-token", Key: "kw"})
	if err != nil {
		t.Fatal(err)
	}
	k.Wrap(ctx, []byte("x"), nil)
	if gotToken != "cfg-token" || gotNS != "" {
		t.Fatalf("token %q namespace %q", gotToken, gotNS)
	}
}
