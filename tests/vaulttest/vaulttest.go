// Package vaulttest runs a real Vault server (dev mode, loopback, transit
// engine on) for the tests of the Transit master key.
//
// tests/build-vault.sh builds the binary into the user cache dir;
// KEYWARDEN_VAULT_BIN overrides the path. Without it tests skip, or fail
// when KEYWARDEN_REQUIRE_VAULT is set (make test sets it).
package vaulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

func Bin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("KEYWARDEN_VAULT_BIN")
	if bin == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			bin = filepath.Join(cache, "keywarden", "vault")
		}
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		msg := fmt.Sprintf("no Vault server binary at %q: build it with tests/build-vault.sh (a few minutes the first time, cached after) or set KEYWARDEN_VAULT_BIN", bin)
		if os.Getenv("KEYWARDEN_REQUIRE_VAULT") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// Server is a running dev-mode Vault with the transit engine enabled.
type Server struct {
	Addr   string
	Token  string // root token of this throwaway server
	CAFile string // set with TLS
	Admin  *api.Client
	log    string // the server's output, where dev mode prints its unseal key
}

// Start runs `vault server -dev` on a free loopback port until the test
// ends. The dev server keeps everything in memory.
func Start(t testing.TB, withTLS bool) *Server {
	t.Helper()
	bin := Bin(t)
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // another process may take the port
		s, err := tryStart(t, bin, dir, withTLS)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting Vault: %v", lastErr)
	return nil
}

func tryStart(t testing.TB, bin, dir string, withTLS bool) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostport := l.Addr().String()
	l.Close()

	s := &Server{Addr: "http://" + hostport, Token: "kw-root-" + randHex(8)}
	logPath := filepath.Join(dir, "vault-"+randHex(4)+".log")
	s.log = logPath
	args := []string{"server", "-dev", "-dev-no-store-token",
		"-dev-root-token-id=" + s.Token, "-dev-listen-address=" + hostport}
	if withTLS {
		certDir := filepath.Join(dir, "tls-"+randHex(4))
		os.Mkdir(certDir, 0o700)
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certDir)
		s.Addr = "https://" + hostport
		s.CAFile = filepath.Join(certDir, "vault-ca.pem")
	}
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")} // no VAULT_* from the caller
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("vault exited early:\n%s", tail(log, 2000))
		default:
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("vault not ready after 30s:\n%s", tail(log, 2000))
		}
		if s.CAFile != "" {
			if _, err := os.Stat(s.CAFile); err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		if s.Admin == nil {
			cfg := api.DefaultConfig()
			cfg.Address = s.Addr
			if s.CAFile != "" {
				if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: s.CAFile}); err != nil {
					t.Fatal(err)
				}
			}
			cfg.MaxRetries = 0
			c, err := api.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.SetToken(s.Token)
			s.Admin = c
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		h, err := s.Admin.Sys().HealthWithContext(ctx)
		cancel()
		if err == nil && h.Initialized && !h.Sealed {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(stop)
	if err := s.Admin.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("enabling transit: %v", err)
	}
	return s, nil
}

// Seal seals the server: it answers 503 "Vault is sealed" until Unseal.
func (s *Server) Seal(t testing.TB) {
	t.Helper()
	if err := s.Admin.Sys().Seal(); err != nil {
		t.Fatalf("sealing Vault: %v", err)
	}
}

var unsealKey = regexp.MustCompile(`Unseal Key: (\S+)`)

// Unseal unseals a sealed dev server with the key it printed at start.
func (s *Server) Unseal(t testing.TB) {
	t.Helper()
	log, err := os.ReadFile(s.log)
	if err != nil {
		t.Fatal(err)
	}
	m := unsealKey.FindSubmatch(log)
	if m == nil {
		t.Fatalf("no unseal key in the dev server's output:\n%s", tail(log, 2000))
	}
	st, err := s.Admin.Sys().Unseal(string(m[1]))
	if err != nil || st.Sealed {
		t.Fatalf("unsealing Vault: %v (sealed: %v)", err, st != nil && st.Sealed)
	}
}

// NewKey creates a fresh Transit key of the given type on the server.
func (s *Server) NewKey(t testing.TB, typ string) string {
	t.Helper()
	name := "kw-" + randHex(4)
	if _, err := s.Admin.Logical().Write("transit/keys/"+name, map[string]any{"type": typ}); err != nil {
		t.Fatalf("creating transit key: %v", err)
	}
	return name
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
