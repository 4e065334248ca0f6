package pki

import (
	"crypto/ecdsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRevokeAndList(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if crl, err := ca.CRL(); err != nil || crl != nil {
		t.Fatalf("a new CA has a CRL: %v %v", crl, err)
	}
	aliceCert, _, err := ca.IssueClient(ClientRequest{Project: "p1", User: "alice", Roles: []string{"admin"}, KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	bobCert, _, err := ca.IssueClient(ClientRequest{Project: "p1", User: "bob", Roles: []string{"observer"}, KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := ca.CertSerial(aliceCert)
	if err != nil {
		t.Fatal(err)
	}
	already, err := ca.Revoke(alice)
	if err != nil || already {
		t.Fatalf("revoke: %v %v", already, err)
	}
	if already, err := ca.Revoke(alice); err != nil || !already {
		t.Fatalf("revoke again: %v %v", already, err)
	}
	bob, _ := ca.CertSerial(bobCert)
	if _, err := ca.Revoke(bob); err != nil {
		t.Fatal(err)
	}
	crl, err := ca.CRL()
	if err != nil || len(crl.RevokedCertificateEntries) != 2 || crl.Number.Int64() != 2 {
		t.Fatalf("CRL %+v %v", crl, err)
	}
	list, err := ca.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	for _, it := range list {
		if !it.Revoked || it.Project != "p1" || (it.User != "alice" && it.User != "bob") {
			t.Fatalf("listed %+v", it)
		}
	}
	// A serial in the forms people paste.
	for _, s := range []string{SerialHex(alice), "0x" + SerialHex(alice), strings.ToUpper(colons(SerialHex(alice))), "serial=" + strings.ToUpper(SerialHex(alice))} {
		n, err := ParseSerial(s)
		if err != nil || n.Cmp(alice) != 0 {
			t.Fatalf("ParseSerial(%q) = %v, %v", s, n, err)
		}
	}
	for _, s := range []string{"", "xyz", "0"} {
		if _, err := ParseSerial(s); err == nil {
			t.Fatalf("ParseSerial(%q) accepted", s)
		}
	}
	// A certificate of another CA is not this CA's to revoke.
	other, _, _ := LoadOrCreate(t.TempDir())
	foreign, _, _ := other.IssueClient(ClientRequest{Project: "p1", User: "eve", KeyType: "ecdsa"})
	if _, err := ca.CertSerial(foreign); err == nil {
		t.Fatal("a foreign certificate was taken as this CA's")
	}
	// A CRL another CA signed is refused.
	os.WriteFile(filepath.Join(dir, CRLFile), mustRead(t, filepath.Join(other.Dir(), CRLFile), other), 0o644)
	if _, err := ca.CRL(); err == nil {
		t.Fatal("a CRL of another CA was accepted")
	}
}

func colons(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// mustRead revokes something on ca so it has a CRL, and reads it.
func mustRead(t *testing.T, path string, ca *CA) []byte {
	t.Helper()
	c, _, _ := ca.IssueClient(ClientRequest{Project: "x", User: "y", KeyType: "ecdsa"})
	n, _ := ca.CertSerial(c)
	if _, err := ca.Revoke(n); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCAKeyMode: ca-key.pem is held to the rule root.key is.
func TestCAKeyMode(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, CAKeyFile)
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca-key.pem created %v", fi.Mode())
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(key, mode)
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %#o: %v", mode, err)
		}
	}
	os.Chmod(key, 0o400)
	if _, err := Load(dir); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}
}

// TestLifetimesAndECDSAServer: lifetimes come from the caller; the server
// gets an RSA and an ECDSA certificate.
func TestLifetimesAndECDSAServer(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := LoadOrCreateWith(dir, Options{CA: 3 * 365 * 24 * time.Hour, Server: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(ca.Certificate().NotAfter); d > 3*365*24*time.Hour+time.Hour || d < 3*365*24*time.Hour-48*time.Hour {
		t.Fatalf("CA valid for %v", d)
	}
	if _, _, _, err := ca.EnsureServer([]string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ServerFile, ECDSAServerFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		c := parse(t, b)
		if d := time.Until(c.NotAfter); d > 90*24*time.Hour+time.Hour || d < 89*24*time.Hour {
			t.Fatalf("%s valid for %v", f, d)
		}
		if _, ec := c.PublicKey.(*ecdsa.PublicKey); ec != (f == ECDSAServerFile) {
			t.Fatalf("%s key %T", f, c.PublicKey)
		}
	}
	list, _ := ca.List()
	if len(list) != 2 || !list[0].Server {
		t.Fatalf("list %+v", list)
	}
}
