package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/tests/testserver"
)

// KMIP over HTTPS on the REST listener of the real binary: a JSON Create
// with a client certificate from `keywarden pki issue-client`, the key
// then read over Barbican REST in the same project; no certificate, or a
// revoked one, refused; a Barbican client without a certificate served.
func TestKMIPOverHTTPS(t *testing.T) {
	srv, dir, _ := startRESTOverTLS(t, true)
	kmipClient(t, srv, "p-https", "warm", "admin") // waits for the start-up line
	if !strings.Contains(srv.Log(), "/kmip") {
		t.Fatalf("the start-up log does not give the KMIP over HTTPS URL:\n%s", srv.Log())
	}
	url := "https://" + srv.RESTAddr + "/kmip"

	certDir := filepath.Join(t.TempDir(), "client")
	if out, err := testserver.Run(t, "pki", "issue-client", "--data-dir", dir, "--project", "p-https",
		"--user", "hana", "--roles", "admin", "--out", certDir); err != nil {
		t.Fatalf("pki issue-client: %v\n%s", err, out)
	}
	caPEM, _ := os.ReadFile(filepath.Join(certDir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "client.pem"), filepath.Join(certDir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
	}
	create := []byte(`{"tag":"RequestMessage","value":[
	 {"tag":"RequestHeader","value":[
	  {"tag":"ProtocolVersion","value":[
	   {"tag":"ProtocolVersionMajor","type":"Integer","value":2},
	   {"tag":"ProtocolVersionMinor","type":"Integer","value":1}]},
	  {"tag":"BatchCount","type":"Integer","value":1}]},
	 {"tag":"BatchItem","value":[
	  {"tag":"Operation","type":"Enumeration","value":"Create"},
	  {"tag":"RequestPayload","value":[
	   {"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},
	   {"tag":"Attributes","value":[
	    {"tag":"CryptographicAlgorithm","type":"Enumeration","value":"AES"},
	    {"tag":"CryptographicLength","type":"Integer","value":256},
	    {"tag":"CryptographicUsageMask","type":"Integer","value":"Encrypt|Decrypt"},
	    {"tag":"Name","value":[
	     {"tag":"NameValue","type":"TextString","value":"over-https"},
	     {"tag":"NameType","type":"Enumeration","value":"UninterpretedTextString"}]}]}]}]}]}`)
	post := func(c *http.Client) (int, []byte) {
		t.Helper()
		resp, err := c.Post(url, "application/json", bytes.NewReader(create))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	code, body := post(client(cert))
	if code != http.StatusOK || !json.Valid(body) || !bytes.Contains(body, []byte(`"value":"Success"`)) {
		t.Fatalf("JSON Create over HTTPS: %d %s", code, body)
	}
	m := regexp.MustCompile(`"tag":"UniqueIdentifier","type":"TextString","value":"([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no Unique Identifier in %s", body)
	}
	id := string(m[1])

	// The same key over Barbican REST, same project, no client certificate.
	tok := srv.Token(t, "p-https", "hana", "admin")
	req, _ := http.NewRequest("GET", "https://"+srv.RESTAddr+"/v1/secrets/"+id, nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(meta, []byte(`"name":"over-https"`)) {
		t.Fatalf("Barbican GET of the KMIP-created key: %d %s", resp.StatusCode, meta)
	}

	if code, body := post(client()); code != http.StatusForbidden {
		t.Fatalf("no client certificate: %d %s", code, body)
	}
	if out, err := testserver.Run(t, "pki", "revoke", "--data-dir", dir, "--cert", filepath.Join(certDir, "client.pem")); err != nil {
		t.Fatalf("pki revoke: %v\n%s", err, out)
	}
	revoked := time.Now()
	for {
		code, body := post(client(cert))
		if code == http.StatusForbidden && bytes.Contains(body, []byte("revoked")) {
			break
		}
		if time.Since(revoked) > 10*time.Second {
			t.Fatalf("a revoked certificate still works over HTTPS after 10 s: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("revoked certificate refused over HTTPS %.2f s after `pki revoke`", time.Since(revoked).Seconds())
}
