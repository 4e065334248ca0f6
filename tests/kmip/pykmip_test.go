package kmip_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kmip"
	"github.com/keywarden/keywarden/kms"
)

const python = "/usr/bin/python3"

// pykmip runs testdata/pykmip_client.py with a client's files and returns
// its JSON report.
func pykmip(t *testing.T, s *server, clientDir, version, scenario string) (map[string]any, error) {
	t.Helper()
	needPyKMIP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/pykmip_client.py", s.host, s.port,
		filepath.Join(clientDir, "client.pem"), filepath.Join(clientDir, "client-key.pem"),
		filepath.Join(clientDir, "ca.pem"), version, scenario)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("pykmip %s %s: %v\nstdout: %s\nstderr: %s", version, scenario, err, out, stderr.String())
	}
	if runErr != nil {
		t.Logf("pykmip stderr: %s", stderr.String())
	}
	return res, runErr
}

// needPyKMIP skips where Debian's python3-pykmip is missing.
func needPyKMIP(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skip("Debian python3 is not installed")
	}
	if err := exec.Command(python, "-c", "import kmip").Run(); err != nil {
		t.Skip("python3-pykmip is not installed (apt-get install python3-pykmip)")
	}
}

func TestPyKMIP(t *testing.T) {
	s := startServer(t)
	dir := s.clientFiles(t, "pyproj", "alice", "admin")
	for _, version := range []string{"1.2", "1.4", "2.0"} {
		t.Run(version, func(t *testing.T) {
			res, err := pykmip(t, s, dir, version, "lifecycle")
			if err != nil {
				t.Fatalf("%v: %v", err, res)
			}
			keyID, _ := res["key_id"].(string)
			secretID, _ := res["secret_id"].(string)
			check := func(k string, want any) {
				t.Helper()
				if got := res[k]; !equalJSON(got, want) {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			check("key_len", 32)
			check("key_alg", "AES")
			check("secret_value", "pykmip passphrase "+version)
			check("secret_type", "PASSWORD")
			check("located_by_name", []any{keyID})
			if got, _ := res["located_secrets"].([]any); !slices.Contains(got, any(secretID)) {
				t.Errorf("located secrets %v lack %s", got, secretID)
			}
			attrs, _ := res["attributes"].(map[string]any)
			for k, want := range map[string]any{
				"Unique Identifier": keyID, "Name": "pykmip-key-" + version, "Object Type": "SYMMETRIC_KEY",
				"Cryptographic Algorithm": "AES", "Cryptographic Length": 256, "State": "PRE_ACTIVE",
			} {
				if !equalJSON(attrs[k], want) {
					t.Errorf("attribute %s = %v, want %v", k, attrs[k], want)
				}
			}
			check("some_attributes", map[string]any{"State": "PRE_ACTIVE", "Cryptographic Length": 256})
			list, _ := res["attribute_list"].([]any)
			for _, n := range []string{"Unique Identifier", "Name", "State", "Initial Date", "Cryptographic Usage Mask"} {
				if !slices.Contains(list, any(n)) {
					t.Errorf("attribute list %v lacks %s", list, n)
				}
			}
			check("state_after_activate", "ACTIVE")
			if version == "2.0" {
				check("destroy_active", "WRONG_KEY_LIFECYCLE_STATE")
			} else { // KMIP 1.4 test cases SKLC-M-2, AKLC-M-2
				check("destroy_active", "PERMISSION_DENIED")
			}
			check("state_after_revoke", "DEACTIVATED")
			check("state_after_destroy", "DESTROYED")
			check("get_destroyed", "ITEM_NOT_FOUND")

			// The secret PyKMIP registered is a passphrase to the service.
			sec, pt, err := s.svc.GetPayload(context.Background(), who("pyproj", "alice", "admin"), secretID)
			if err != nil || sec.Type != kms.Passphrase || string(pt) != "pykmip passphrase "+version {
				t.Fatalf("service view of the secret: %+v %q %v", sec, pt, err)
			}
		})
	}
}

// TestPyKMIPUnauthorizedCertificate: a certificate of an unknown CA never
// gets a session.
func TestPyKMIPUnauthorizedCertificate(t *testing.T) {
	s := startServer(t)
	other := newForeignCA(t)
	dir := other.clientFiles(t, "x", "mallory", sharedCA(t).CertPEM())
	res, err := pykmip(t, s, dir, "1.2", "discover")
	if err == nil {
		t.Fatalf("a certificate of an untrusted CA was served: %v", res)
	}
	t.Logf("refused: %v", res["error"])
}

// TestPyKMIPGetsRESTSecret: a passphrase stored through the service (as the
// REST API stores it) is Secret Data (Password) to PyKMIP.
func TestPyKMIPGetsServiceSecret(t *testing.T) {
	s := startServer(t)
	dir := s.clientFiles(t, "shared", "bob", "creator")
	sec, err := s.svc.CreateSecret(context.Background(), who("shared", "bob", "creator"), kms.CreateRequest{
		Name: "vol-1", Type: kms.Passphrase, Payload: []byte("from REST"), ContentType: "text/plain",
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := pykmip(t, s, dir, "1.4", "get:"+sec.ID)
	if err != nil {
		t.Fatalf("%v: %v", err, res)
	}
	if res["object"] != "SecretData" || res["value"] != hex.EncodeToString([]byte("from REST")) {
		t.Fatalf("got %v", res)
	}
}

func equalJSON(got, want any) bool {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	return bytes.Equal(g, w)
}

// TestPyKMIPTLS12Suites: with the default policy, an OpenSSL client
// speaking PyKMIP's encoding over TLS 1.2 gets a forward-secret AEAD suite:
// with PyKMIP's own TLS 1.2 suite list (TLS12AuthenticationSuite) that is
// ECDHE-ECDSA-AES-GCM, on the server's ECDSA certificate. The suites
// without forward secrecy or with CBC are refused unless the legacy switch
// is on. (ProxyKmipClient itself leaves the suites to OpenSSL and gets TLS
// 1.3: TestPyKMIP.)
func TestPyKMIPTLS12Suites(t *testing.T) {
	needPyKMIP(t)
	strict := startServer(t)
	legacy := startServer(t, func(c *kmip.Config) { c.TLS.LegacyCipherSuites = true })
	dir := strict.clientFiles(t, "tls", "tess", "admin")
	run := func(s *server, suite string) (map[string]any, error) {
		cmd := exec.Command(python, "testdata/tls12_cbc.py", s.host, s.port,
			filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"), filepath.Join(dir, "ca.pem"), suite)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("%v: %s", err, out)
		}
		var res map[string]any
		if err := json.Unmarshal(out, &res); err != nil {
			return nil, fmt.Errorf("%s", out)
		}
		return res, nil
	}
	for suite, want := range map[string]string{
		"pykmip-tls12":                  "ECDHE-ECDSA-AES128-GCM-SHA256",
		"ECDHE-ECDSA-AES128-GCM-SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
		"ECDHE-RSA-AES256-GCM-SHA384":   "ECDHE-RSA-AES256-GCM-SHA384",
	} {
		res, err := run(strict, suite)
		if err != nil || res["tls"] != "TLSv1.2" || res["cipher"] != want || res["status"] != "SUCCESS" {
			t.Fatalf("default policy, %s: %v %v", suite, res, err)
		}
		t.Logf("default policy, client suites %s: negotiated %s", suite, res["cipher"])
	}
	for _, suite := range []string{"AES128-SHA256", "ECDHE-RSA-AES128-SHA256", "AES128-GCM-SHA256", "AES128-SHA"} {
		if res, err := run(strict, suite); err == nil {
			t.Fatalf("default policy accepted %s: %v", suite, res)
		}
		res, err := run(legacy, suite)
		if err != nil || res["cipher"] != suite || res["status"] != "SUCCESS" {
			t.Fatalf("legacy_cipher_suites, %s: %v %v", suite, res, err)
		}
	}
}

// TestPyKMIPCrypto: PyKMIP's create_key_pair, sign, signature_verify,
// encrypt, decrypt and mac against the server, each result checked with
// Go's crypto and the key material the server returned.
func TestPyKMIPCrypto(t *testing.T) {
	s := startServer(t)
	dir := s.clientFiles(t, "pyproj", "alice", "admin")
	for _, version := range []string{"1.2", "1.4", "2.0"} {
		t.Run(version, func(t *testing.T) {
			res, err := pykmip(t, s, dir, version, "crypto")
			if err != nil {
				t.Fatalf("%v: %v", err, res)
			}
			str := func(k string) string { v, _ := res[k].(string); return v }
			hexOf := func(k string) []byte {
				b, err := hex.DecodeString(str(k))
				if err != nil || len(b) == 0 {
					t.Fatalf("%s: %q", k, str(k))
				}
				return b
			}
			for k, want := range map[string]string{
				"rsa_pss_valid": "VALID", "rsa_pss_other": "INVALID", "ecdsa_valid": "VALID",
				"rsa_oaep_roundtrip": "pykmip secret", "aes_cbc_roundtrip": "pykmip data to encrypt",
				"sign_preactive": "ILLEGAL_OPERATION", "sign_with_public": "ILLEGAL_OPERATION",
				// PyKMIP's create always adds Encrypt and Decrypt to the
				// mask: the HMAC key is refused for its algorithm.
				"encrypt_with_mac_key": "INVALID_FIELD",
			} {
				if version == "2.0" && (k == "sign_preactive" || k == "sign_with_public") {
					want = map[string]string{"sign_preactive": "WRONG_KEY_LIFECYCLE_STATE",
						"sign_with_public": "INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK"}[k]
				}
				if got := str(k); got != want {
					t.Errorf("%s = %q, want %q (%v)", k, got, want, res[k+"_msg"])
				}
			}
			msg := []byte("pykmip message")
			if err := verifyLocally(hexOf("rsa_public"), msg, hexOf("rsa_pss_sig"), true); err != nil {
				t.Errorf("RSA-PSS signature: %v", err)
			}
			if err := verifyLocally(hexOf("ec_public"), msg, hexOf("ecdsa_sig"), false); err != nil {
				t.Errorf("ECDSA signature: %v", err)
			}
			if pt, err := cbcDecrypt(hexOf("aes_key"), hexOf("aes_cbc_iv"), hexOf("aes_cbc_ct")); err != nil || string(pt) != "pykmip data to encrypt" {
				t.Errorf("AES-CBC ciphertext opened locally: %q %v", pt, err)
			}
			if want := hmacSHA256(hexOf("hmac_key"), []byte("pykmip mac data")); !bytes.Equal(want, hexOf("hmac")) {
				t.Errorf("HMAC differs from Go's")
			}
		})
	}
}

// TestPyKMIPLocate12: PyKMIP at KMIP 1.2 locates by name, pages with
// Maximum Items and filters on the Storage Status Mask; its Offset Items, a
// 1.3 member, is refused as an Invalid Field. At 1.4 Offset Items pages.
func TestPyKMIPLocate12(t *testing.T) {
	s := startServer(t)
	dir := s.clientFiles(t, "pyloc", "alice", "admin")
	for _, version := range []string{"1.2", "1.4"} {
		t.Run(version, func(t *testing.T) {
			res, err := pykmip(t, s, dir, version, "locate")
			if err != nil {
				t.Fatalf("%v: %v", err, res)
			}
			ids, _ := res["ids"].([]any)
			if len(ids) != 3 {
				t.Fatalf("ids %v", res["ids"])
			}
			if got := res["by_name"]; !equalJSON(got, []any{ids[1]}) {
				t.Errorf("by name: %v", got)
			}
			if got, _ := res["first_two"].([]any); len(got) != 2 {
				t.Errorf("Maximum Items 2: %v", got)
			}
			if got := res["online"]; !equalJSON(got, []any{ids[1]}) {
				t.Errorf("On-line mask: %v", got)
			}
			want := "INVALID_FIELD"
			if version != "1.2" {
				want = "accepted"
			}
			if got := res["offset_items"]; got != want {
				t.Errorf("Offset Items at %s: %v, want %s", version, got, want)
			}
		})
	}
}

// TestPyKMIPRekeyAttributes: PyKMIP's rekey sends the new key's dates as
// request attributes; the replacement takes them over the Offset's (so it
// is Active at once), and a Deactivation Date, which this server sets
// itself (as at Create), is refused.
func TestPyKMIPRekeyAttributes(t *testing.T) {
	s := startServer(t)
	dir := s.clientFiles(t, "pyrekey", "alice", "admin")
	for _, version := range []string{"1.2", "1.4", "2.0"} {
		t.Run(version, func(t *testing.T) {
			res, err := pykmip(t, s, dir, version, "rekey")
			if err != nil {
				t.Fatalf("%v: %v", err, res)
			}
			now, _ := res["now"].(float64)
			attrs, _ := res["new_attributes"].(map[string]any)
			for k, want := range map[string]any{"State": "ACTIVE", "Activation Date": now - 60, "Process Start Date": now - 60,
				"Protect Stop Date": now + 86400, "Name": "py-rekey-" + version} {
				if !equalJSON(attrs[k], want) {
					t.Errorf("replacement %s = %v, want %v (all: %v)", k, attrs[k], want, attrs)
				}
			}
			if res["rekey_deactivation"] != "READ_ONLY_ATTRIBUTE" && res["rekey_deactivation"] != "PERMISSION_DENIED" {
				t.Errorf("re-key with a Deactivation Date: %v", res["rekey_deactivation"])
			}
		})
	}
}
