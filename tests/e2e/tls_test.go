package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
)

// The REST API over TLS (rest.tls_cert / rest.tls_key), with the server
// certificate the built-in CA issued: refs are https, the openstack CLI
// verifies the chain with --os-cacert, and plain HTTP gets no secret.
func TestRESTOverTLS(t *testing.T) {
	need(t, "openstack")
	srv, dir, cfg := startRESTOverTLS(t, false)
	pki := filepath.Join(dir, "kmip")
	if !strings.Contains(srv.Log(), "rest=https://") {
		t.Fatalf("start-up line does not say https:\n%s", srv.Log())
	}
	base := "https://" + srv.RESTAddr
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	tok := srv.Token(t, "p-tls", "u1", "admin")
	if _, err := createSecret(c, base, "ignored", []byte("over tls")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("create without a token over TLS: %v", err)
	}
	osc := func(args ...string) string {
		return run(t, "openstack", append([]string{"--os-auth-type", "admin_token", "--os-token", tok,
			"--os-endpoint", base + "/v1", "--os-cacert", filepath.Join(pki, "ca.pem")}, args...)...)
	}
	ref := osc("secret", "store", "--name", "tls", "--payload", "over tls", "-f", "value", "-c", "Secret href")
	if !strings.HasPrefix(ref, base+"/v1/secrets/") {
		t.Fatalf("ref %q is not https on this server", ref)
	}
	if got := osc("secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); got != "over tls" {
		t.Fatalf("payload over TLS: %q", got)
	}
	// The operator CLI reaches the running server over https too.
	out, err := testserver.Run(t, "secret", "orphans", "--data-dir", dir, "--config", cfg, "--rest-addr", srv.RESTAddr,
		"--ca-file", filepath.Join(pki, "ca.pem"))
	if err != nil || !strings.Contains(out, "asking it at https://") || !strings.Contains(out, "0 orphaned secrets") {
		t.Fatalf("secret orphans over https: %v\n%s", err, out)
	}
	// An untrusted chain is refused by the client; plain HTTP gets nothing.
	if _, err := http.Get(base + "/"); err == nil {
		t.Fatal("a client without the CA trusted the server")
	}
	resp, err := http.Get("http://" + srv.RESTAddr + "/v1/secrets")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS port: %d", resp.StatusCode)
		}
	}
}

// startRESTOverTLS runs the binary with REST over TLS, its certificate the
// one the built-in CA issued (a first start with KMIP makes them), KMIP on
// or off; it returns the server, its data dir and its config file.
func startRESTOverTLS(t *testing.T, withKMIP bool) (*testserver.Server, string, string) {
	t.Helper()
	dir := t.TempDir()
	srv := testserver.Start(t, testserver.Options{DataDir: dir, KMIP: true})
	srv.Stop(t)
	pki := filepath.Join(dir, "kmip")
	cfg := filepath.Join(dir, "tls.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("rest:\n  tls_cert: %s\n  tls_key: %s\n",
		filepath.Join(pki, "server.pem"), filepath.Join(pki, "server-key.pem"))), 0o600)
	return testserver.Start(t, testserver.Options{DataDir: dir, KMIP: withKMIP, Args: []string{"--config", cfg}}), dir, cfg
}
