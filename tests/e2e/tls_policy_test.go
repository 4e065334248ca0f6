package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
)

// TestRESTTLSPolicy: the REST listener over TLS offers TLS 1.3 and, for
// TLS 1.2, only forward-secret AEAD suites; rest.legacy_cipher_suites adds
// the others for old clients.
func TestRESTTLSPolicy(t *testing.T) {
	dir := t.TempDir()
	srv := testserver.Start(t, testserver.Options{DataDir: dir, KMIP: true}) // makes the CA and server certificate
	srv.Stop(t)
	pki := filepath.Join(dir, "kmip")
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	start := func(legacy bool) *testserver.Server {
		cfg := filepath.Join(t.TempDir(), "tls.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("rest:\n  tls_cert: %s\n  tls_key: %s\n  legacy_cipher_suites: %v\n",
			filepath.Join(pki, "server.pem"), filepath.Join(pki, "server-key.pem"), legacy)), 0o600)
		return testserver.Start(t, testserver.Options{DataDir: dir, NoAuth: true, Args: []string{"--config", cfg}})
	}
	dial := func(s *testserver.Server, maxVersion uint16, suite uint16) (string, error) {
		cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: maxVersion}
		if suite != 0 {
			cfg.CipherSuites = []uint16{suite}
		}
		c, err := tls.Dial("tcp", s.RESTAddr, cfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		st := c.ConnectionState()
		return tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite), nil
	}
	legacySuites := []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}

	s := start(false)
	for _, c := range []struct {
		max   uint16
		suite uint16
	}{{tls.VersionTLS13, 0}, {tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, {tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}} {
		got, err := dial(s, c.max, c.suite)
		if err != nil {
			t.Fatalf("default policy refused %s: %v", tls.CipherSuiteName(c.suite), err)
		}
		t.Logf("default policy: %s", got)
	}
	for _, suite := range legacySuites {
		if got, err := dial(s, tls.VersionTLS12, suite); err == nil {
			t.Fatalf("default policy accepted %s", got)
		}
	}
	if _, err := dial(s, tls.VersionTLS11, 0); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	s.Stop(t)

	s = start(true)
	for _, suite := range legacySuites {
		if _, err := dial(s, tls.VersionTLS12, suite); err != nil {
			t.Fatalf("legacy_cipher_suites: %s refused: %v", tls.CipherSuiteName(suite), err)
		}
	}
}
