package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func parse(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("not PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCA(t *testing.T) {
	dir := t.TempDir()
	// Two processes starting at once end up with one CA.
	var wg sync.WaitGroup
	cas := make([]*CA, 4)
	errs := make([]error, 4)
	for i := range cas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cas[i], _, errs[i] = LoadOrCreate(dir)
		}()
	}
	wg.Wait()
	for i := range cas {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(cas[i].CertPEM(), cas[0].CertPEM()) {
			t.Fatal("racing LoadOrCreate made two CAs")
		}
	}
	ca := cas[0]
	if !ca.Certificate().IsCA || ca.Certificate().NotAfter.Before(time.Now().Add(9*365*24*time.Hour)) {
		t.Fatalf("CA: %+v", ca.Certificate())
	}
	if _, ok := ca.Certificate().PublicKey.(*rsa.PublicKey); !ok {
		t.Fatal("the CA key is not RSA")
	}
	again, created, err := LoadOrCreate(dir)
	if err != nil || created || !bytes.Equal(again.CertPEM(), ca.CertPEM()) {
		t.Fatalf("reload: created=%v %v", created, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, CAKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode %v", fi.Mode())
	}

	// Client certificates: subject carries the caller, EKU clientAuth only.
	certPEM, keyPEM, err := ca.IssueClient(ClientRequest{Project: "proj", User: "alice", Roles: []string{"admin", "creator"}})
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, certPEM)
	if c.Subject.CommonName != "alice" || !slices.Equal(c.Subject.Organization, []string{"proj"}) ||
		!slices.Equal(c.Subject.OrganizationalUnit, []string{"admin", "creator"}) {
		t.Fatalf("subject %v", c.Subject)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || c.IsCA {
		t.Fatalf("usage %v, CA %v", c.ExtKeyUsage, c.IsCA)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.PublicKey.(*rsa.PublicKey); !ok || !bytes.Contains(keyPEM, []byte("PRIVATE KEY")) {
		t.Fatal("the default client key is not RSA")
	}
	certPEM, _, err = ca.IssueClient(ClientRequest{Project: "p", User: "u", KeyType: "ecdsa", Validity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c = parse(t, certPEM)
	if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || c.NotAfter.After(time.Now().Add(49*time.Hour)) {
		t.Fatalf("ecdsa client: %T until %v", c.PublicKey, c.NotAfter)
	}
	if _, _, err := ca.IssueClient(ClientRequest{Project: "p", User: "u", KeyType: "dsa"}); err == nil {
		t.Fatal("unknown key type accepted")
	}
	if _, _, err := ca.IssueClient(ClientRequest{User: "u"}); err == nil {
		t.Fatal("no project accepted")
	}

	// Server certificate: RSA, serverAuth, the hosts; reused until the hosts
	// change.
	cf, kf, made, err := ca.EnsureServer([]string{"localhost", "127.0.0.1"})
	if err != nil || !made {
		t.Fatalf("server: %v %v", made, err)
	}
	b, _ := os.ReadFile(cf)
	s := parse(t, b)
	if _, ok := s.PublicKey.(*rsa.PublicKey); !ok || !slices.Contains(s.ExtKeyUsage, x509.ExtKeyUsageServerAuth) ||
		s.VerifyHostname("127.0.0.1") != nil || s.VerifyHostname("localhost") != nil {
		t.Fatalf("server certificate: %+v", s)
	}
	if fi, _ := os.Stat(kf); fi.Mode().Perm() != 0o600 {
		t.Fatalf("server key mode %v", fi.Mode())
	}
	if _, _, made, _ := ca.EnsureServer([]string{"127.0.0.1"}); made {
		t.Fatal("a covering server certificate was reissued")
	}
	if _, _, made, _ := ca.EnsureServer([]string{"127.0.0.1", "kms.example"}); !made {
		t.Fatal("a server certificate missing a host was kept")
	}

	// Client files.
	out := filepath.Join(t.TempDir(), "client")
	paths, err := ca.WriteClient(out, certPEM, []byte("key"))
	if err != nil || len(paths) != 3 {
		t.Fatal(paths, err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "ca.pem")); !bytes.Equal(b, ca.CertPEM()) {
		t.Fatal("ca.pem is not the CA")
	}
	if fi, _ := os.Stat(filepath.Join(out, "client-key.pem")); fi.Mode().Perm() != 0o600 {
		t.Fatal("client key is readable by others")
	}
}

func pool(ca *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Certificate())
	return p
}

// TestECDSACA: an ECDSA CA is P-384 and signs with ECDSA-SHA384 (the
// Suite B chain); its server and client certificates are ECDSA on the
// curve asked, for digital signature only.
func TestECDSACA(t *testing.T) {
	if _, _, err := LoadOrCreateWith(t.TempDir(), Options{CAKeyType: "dsa"}); err == nil {
		t.Fatal("an unknown CA key type was taken")
	}
	dir := t.TempDir()
	ca, created, err := LoadOrCreateWith(dir, Options{CAKeyType: "ecdsa"})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if ca.KeyType() != "ecdsa-p384" || ca.Certificate().SignatureAlgorithm != x509.ECDSAWithSHA384 {
		t.Fatalf("CA %s signed with %v", ca.KeyType(), ca.Certificate().SignatureAlgorithm)
	}
	// Reloaded, it stays what it was made: the key type applies at creation.
	if again, _, err := LoadOrCreateWith(dir, Options{CAKeyType: "rsa"}); err != nil || again.KeyType() != "ecdsa-p384" {
		t.Fatalf("reloaded: %v", err)
	}
	hosts := []string{"localhost", "127.0.0.1"}
	if _, _, _, err := ca.EnsureServer(hosts); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ca.EnsureP384Server(hosts); err != nil {
		t.Fatal(err)
	}
	cp, kp, _ := ca.IssueClient(ClientRequest{Project: "p", User: "u", Roles: []string{"admin"}, KeyType: "ecdsa-p384"})
	client := parse(t, cp)
	want := map[string]*x509.Certificate{"ecdsa-p384": client}
	for name, kt := range map[string]string{ECDSAServerFile: "ecdsa-p256", P384ServerFile: "ecdsa-p384", ServerFile: "rsa"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		c := parse(t, b)
		if KeyTypeOf(c) != kt {
			t.Fatalf("%s: %s, want %s", name, KeyTypeOf(c), kt)
		}
		if kt != "rsa" {
			want[name] = c
		}
	}
	for name, c := range want {
		if c.SignatureAlgorithm != x509.ECDSAWithSHA384 || c.CheckSignatureFrom(ca.Certificate()) != nil {
			t.Fatalf("%s: signed with %v", name, c.SignatureAlgorithm)
		}
		if c.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Fatalf("%s: key usage %v, want digital signature only", name, c.KeyUsage)
		}
	}
	if len(kp) == 0 || KeyTypeOf(client) != "ecdsa-p384" {
		t.Fatalf("client key %s", KeyTypeOf(client))
	}
	if _, _, err := ca.IssueClient(ClientRequest{Project: "p", User: "u", KeyType: "ecdsa-p521"}); err == nil {
		t.Fatal("an unknown client key type was taken")
	}
}
