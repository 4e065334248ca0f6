// Package kmip_test runs Keywarden's KMIP server in-process (real bolt
// store, root key, kms.Service, the built-in CA, TLS on 127.0.0.1:0) against
// independent clients: Debian's PyKMIP 0.10 and github.com/ovh/kmip-go.
package kmip_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keywarden/keywarden/kmip"
	"github.com/keywarden/keywarden/kmip/kmiptest"
	"github.com/keywarden/keywarden/kmip/pki"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/kmstest"
)

var (
	caOnce sync.Once
	caDir  string
	ca     *pki.CA
	caErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if caDir != "" {
		os.RemoveAll(caDir)
	}
	os.Exit(code)
}

// sharedCA is created once per test binary (RSA keys are slow to make).
func sharedCA(t testing.TB) *pki.CA {
	t.Helper()
	caOnce.Do(func() {
		if caDir, caErr = os.MkdirTemp("", "kmip-e2e-ca-"); caErr != nil {
			return
		}
		if ca, _, caErr = pki.LoadOrCreate(caDir); caErr != nil {
			return
		}
		_, _, _, caErr = ca.EnsureServer([]string{"127.0.0.1", "localhost"})
	})
	if caErr != nil {
		t.Fatal(caErr)
	}
	return ca
}

type server struct {
	addr string
	host string
	port string
	svc  *kms.Service
	ca   *pki.CA
	dir  string
	srv  *kmip.Server
}

// startServer runs a KMIP server over a fresh store and service, with the
// CA's RSA and ECDSA server certificates.
func startServer(t testing.TB, opts ...func(*kmip.Config)) *server {
	t.Helper()
	ca := sharedCA(t)
	dir := t.TempDir()
	svc := kmstest.Service(t, kms.Config{})
	cert, err := tls.LoadX509KeyPair(filepath.Join(ca.Dir(), pki.ServerFile), filepath.Join(ca.Dir(), pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ecCert, err := tls.LoadX509KeyPair(filepath.Join(ca.Dir(), pki.ECDSAServerFile), filepath.Join(ca.Dir(), pki.ECDSAServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := kmip.NewIdentities(ca.Certificate(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := kmip.Config{Service: svc, Certificate: cert, ExtraCertificates: []tls.Certificate{ecCert}, Identities: ids}
	for _, o := range opts {
		o(&cfg)
	}
	srv, addr := kmiptest.Serve(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	return &server{addr: addr, host: host, port: port, svc: svc, ca: ca, dir: dir, srv: srv}
}

// clientFiles issues a client certificate as `keywarden pki issue-client`
// does and returns the directory holding client.pem, client-key.pem, ca.pem.
func (s *server) clientFiles(t testing.TB, project, user string, roles ...string) string {
	t.Helper()
	certPEM, keyPEM, err := s.ca.IssueClient(pki.ClientRequest{Project: project, User: user, Roles: roles, KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), strings.ReplaceAll(project+"-"+user, "/", "_"))
	if _, err := s.ca.WriteClient(dir, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return dir
}

func who(project, user string, roles ...string) kms.Identity {
	return kms.Identity{Project: project, User: user, Roles: roles}
}

// foreignCA is a CA Keywarden does not know (or knows only through
// configuration): another organisation's PKI.
type foreignCA struct {
	*pki.CA
	file string // its certificate, PEM
}

func newForeignCA(t testing.TB) *foreignCA {
	t.Helper()
	dir := t.TempDir()
	c, _, err := pki.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &foreignCA{CA: c, file: filepath.Join(dir, pki.CAFile)}
}

// clientFiles writes a client certificate of this CA, with serverCA as the
// ca.pem the client trusts for the server.
func (f *foreignCA) clientFiles(t testing.TB, project, user string, serverCA []byte, roles ...string) string {
	t.Helper()
	certPEM, keyPEM, err := f.IssueClient(pki.ClientRequest{Project: project, User: user, Roles: roles, KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "foreign-"+user)
	os.MkdirAll(dir, 0o700)
	for name, data := range map[string][]byte{"client.pem": certPEM, "client-key.pem": keyPEM, "ca.pem": serverCA} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
