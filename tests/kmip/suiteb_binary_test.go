package kmip_test

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
)

// TestSuiteBBinary runs `keywarden serve` with kmip.tls_profile
// suiteb-192 on a fresh data directory: the CA is made ECDSA P-384, a
// P-384 client of `pki issue-client --key-type ecdsa-p384` restricted to
// the Suite B minLOS 192 TLS does the OASIS test case's Query and sees the
// profile claimed; a P-256 client is refused. A data directory whose CA
// is RSA does not start in Suite B mode and says why.
func TestSuiteBBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := keywardenBinary(t)
	data := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "keywarden.yaml")
	os.WriteFile(cfg, []byte("kmip:\n  addr: 127.0.0.1:0\n  tls_profile: suiteb-192\n"), 0o600)
	args := []string{"--config", cfg, "--data-dir", data, "--rest-addr", "127.0.0.1:0", "--insecure-noauth", "--log-level", "info"}
	p := startServe(t, bin, args...)
	kmipAddr := p.waitFor(t, startedRE)[2]
	p.waitFor(t, regexp.MustCompile(`created the KMIP certificate authority" .* key_type=ecdsa-p384`))
	p.waitFor(t, regexp.MustCompile(`tls="Suite B minLOS 192"`))

	issue := func(keyType string) string {
		out := filepath.Join(t.TempDir(), keyType)
		if b, err := exec.Command(bin, "pki", "issue-client", "--data-dir", data, "--project", "sb",
			"--user", "sam", "--roles", "admin", "--key-type", keyType, "--out", out).CombinedOutput(); err != nil {
			t.Fatalf("issue-client: %v\n%s", err, b)
		}
		return out
	}
	dial := func(dir string) (*kmipclient.Client, error) {
		tc := &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
			CurvePreferences: []tls.CurveID{tls.CurveP384}}
		return kmipclient.Dial(kmipAddr, kmipclient.WithTlsConfig(tc), kmipclient.EnforceVersion(ovh.V1_4),
			kmipclient.WithRootCAFile(filepath.Join(dir, "ca.pem")),
			kmipclient.WithClientCertFiles(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")))
	}
	c, err := dial(issue("ecdsa-p384"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	q, err := c.Query().Operations().Objects().ExecContext(ctx)
	if err != nil || !slices.Contains(q.Operations, ovh.OperationQuery) || !slices.Contains(q.ObjectType, ovh.ObjectTypeSymmetricKey) {
		t.Fatalf("Query: %v %+v", err, q)
	}
	pr, err := c.Query().Profiles().ExecContext(ctx)
	if err != nil || !slices.ContainsFunc(pr.ProfileInformation, func(pi ovh.ProfileInformation) bool {
		return pi.ProfileName == ovh.ProfileNameSuiteBMinLOS_192ServerKMIPV1_4
	}) {
		t.Fatalf("Query Profiles: %v %+v", err, pr)
	}
	if c2, err := dial(issue("ecdsa")); err == nil {
		c2.Close()
		t.Fatal("a P-256 client certificate was accepted at minLOS 192")
	}

	// An RSA CA cannot serve Suite B: the server says so and stops.
	rsaData := t.TempDir()
	if b, err := exec.Command(bin, "pki", "init", "--data-dir", rsaData).CombinedOutput(); err != nil {
		t.Fatalf("pki init: %v\n%s", err, b)
	}
	out, err := exec.Command(bin, "serve", "--config", cfg, "--data-dir", rsaData, "--rest-addr", "127.0.0.1:0",
		"--insecure-noauth").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot make a Suite B chain") {
		t.Fatalf("serve with an RSA CA in Suite B mode: %v\n%s", err, out)
	}
}
