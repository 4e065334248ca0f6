package kmip_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"

	"github.com/keywarden/keywarden/kmip"
	"github.com/keywarden/keywarden/kmip/kmiptest"
	"github.com/keywarden/keywarden/kmip/pki"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/kmstest"
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

// TestPyKMIPSuiteB: the Suite B test case's Query, encoded by PyKMIP over
// Python's TLS 1.2 with each suite and curve the mode requires, is
// answered; a suite or curve outside the mode (CBC, ChaCha20, P-521, and
// at 192 AES-128 and P-256) is refused.
func TestPyKMIPSuiteB(t *testing.T) {
	needPyKMIP(t)
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreateWith(filepath.Join(dir, "ca"), pki.Options{CAKeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"127.0.0.1", "localhost"}
	if _, _, _, err := ca.EnsureServer(hosts); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ca.EnsureP384Server(hosts); err != nil {
		t.Fatal(err)
	}
	load := func(cert, key string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(ca.Dir(), cert), filepath.Join(ca.Dir(), key))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	certPEM, keyPEM, err := ca.IssueClient(pki.ClientRequest{Project: "sb", User: "py", Roles: []string{"admin"}, KeyType: "ecdsa-p384"})
	if err != nil {
		t.Fatal(err)
	}
	cdir := filepath.Join(dir, "client")
	if _, err := ca.WriteClient(cdir, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	ids, err := kmip.NewIdentities(ca.Certificate(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []kmip.SuiteB{kmip.SuiteB128, kmip.SuiteB192} {
		_, addr := kmiptest.Serve(t, kmip.Config{Service: kmstest.Service(t, kms.Config{}), Identities: ids,
			Certificate:       load(pki.P384ServerFile, pki.P384ServerKeyFile),
			ExtraCertificates: []tls.Certificate{load(pki.ECDSAServerFile, pki.ECDSAServerKeyFile)},
			TLS:               kmip.TLSOptions{SuiteB: mode}})
		host, port, _ := net.SplitHostPort(addr)
		run := func(cipher, curve string) map[string]any {
			out, err := exec.Command(python, "testdata/suiteb_query.py", host, port, filepath.Join(cdir, "client.pem"),
				filepath.Join(cdir, "client-key.pem"), filepath.Join(cdir, "ca.pem"), cipher, curve).CombinedOutput()
			var res map[string]any
			if err != nil || json.Unmarshal(out, &res) != nil {
				t.Fatalf("suiteb_query.py: %v: %s", err, out)
			}
			return res
		}
		type tc struct{ cipher, curve string }
		ok := []tc{{"ECDHE-ECDSA-AES256-GCM-SHA384", "secp384r1"}}
		bad := []tc{{"ECDHE-ECDSA-AES128-SHA256", "secp384r1"}, {"ECDHE-ECDSA-CHACHA20-POLY1305", "secp384r1"}, {"ECDHE-ECDSA-AES256-GCM-SHA384", "secp521r1"}}
		if mode == kmip.SuiteB128 {
			ok = append(ok, tc{"ECDHE-ECDSA-AES128-GCM-SHA256", "prime256v1"}, tc{"ECDHE-ECDSA-AES128-GCM-SHA256", "secp384r1"},
				tc{"ECDHE-ECDSA-AES256-GCM-SHA384", "prime256v1"})
		} else {
			bad = append(bad, tc{"ECDHE-ECDSA-AES128-GCM-SHA256", "secp384r1"}, tc{"ECDHE-ECDSA-AES256-GCM-SHA384", "prime256v1"})
		}
		for _, c := range ok {
			res := run(c.cipher, c.curve)
			ops, _ := res["operations"].([]any)
			objs, _ := res["objects"].([]any)
			if res["status"] != "SUCCESS" || res["cipher"] != c.cipher || !slices.Contains(ops, any("QUERY")) ||
				!slices.Contains(objs, any("SYMMETRIC_KEY")) {
				t.Fatalf("%v, %s on %s: %v", mode, c.cipher, c.curve, res)
			}
		}
		for _, c := range bad {
			if res := run(c.cipher, c.curve); res["refused"] == nil {
				t.Fatalf("%v accepted %s on %s: %v", mode, c.cipher, c.curve, res)
			}
		}
		t.Logf("%v: PyKMIP's Query answered with %d suite/curve pairs, %d refused", mode, len(ok), len(bad))
	}
}
