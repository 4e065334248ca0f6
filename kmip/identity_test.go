package kmip

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kmip/pki"
)

// certOf makes a certificate signed by parent (self-signed when nil).
func certOf(t *testing.T, subj pkix.Name, isCA bool, eku []x509.ExtKeyUsage, parent *x509.Certificate, parentKey any) (*x509.Certificate, any) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subj,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: eku,
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	if parent == nil {
		parent, parentKey = tmpl, k
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func chainsFor(t *testing.T, ids *Identities, leaf *x509.Certificate) [][]*x509.Certificate {
	t.Helper()
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: ids.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return chains
}

func TestIdentities(t *testing.T) {
	own := sharedCA(t)
	other, otherKey := certOf(t, pkix.Name{CommonName: "Corp Issuing CA", Organization: []string{"Corp"}}, true, nil, nil, nil)
	ids, err := NewIdentities(own.Certificate(), []*x509.Certificate{other}, []Mapping{
		{Issuer: "Corp Issuing CA", OU: "storage", Project: "storage-team", Roles: []string{"creator"}},
		{Issuer: "CN=Corp Issuing CA,O=Corp", SubjectCN: "nova-compute", Project: "nova", User: "nova", Roles: []string{"observer"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}

	// Keywarden's own certificates carry the identity in the subject.
	pemCert, _, err := own.IssueClient(pki.ClientRequest{Project: "p1", User: "alice", Roles: []string{"admin", "creator"}, KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := parsePEMCert(t, pemCert)
	id, err := ids.Identify(chainsFor(t, ids, leaf))
	if err != nil || id.Project != "p1" || id.User != "alice" || !slices.Equal(id.Roles, []string{"admin", "creator"}) ||
		id.Source != CASource(own.Certificate()) {
		t.Fatalf("own certificate: %+v %v", id, err)
	}
	ownSource := id.Source
	if want := "x509:" + hex.EncodeToString(own.Certificate().SubjectKeyId); ownSource != want || len(own.Certificate().SubjectKeyId) == 0 {
		t.Fatalf("own certificate's Source %q, want %q", ownSource, want)
	}

	// Another CA's certificates map through configuration, first match wins.
	c, _ := certOf(t, pkix.Name{CommonName: "bob", OrganizationalUnit: []string{"storage"}}, false, clientAuth, other, otherKey)
	id, err = ids.Identify(chainsFor(t, ids, c))
	if err != nil || id.Project != "storage-team" || id.User != "bob" || !slices.Equal(id.Roles, []string{"creator"}) ||
		id.Source != CASource(other) || id.Source == CASource(own.Certificate()) || !strings.HasPrefix(id.Source, "x509:") {
		t.Fatalf("mapped by OU: %+v %v", id, err)
	}
	// The namespace is the issuing CA's: never the same as Keywarden's own.
	if id.Source != CASource(other) || id.Source == ownSource || !strings.HasPrefix(id.Source, "x509:") {
		t.Fatalf("mapped certificate's Source %q (own CA %q)", id.Source, ownSource)
	}
	c, _ = certOf(t, pkix.Name{CommonName: "nova-compute"}, false, clientAuth, other, otherKey)
	id, err = ids.Identify(chainsFor(t, ids, c))
	if err != nil || id.Project != "nova" || id.User != "nova" {
		t.Fatalf("mapped by issuer DN and CN: %+v %v", id, err)
	}
	// No mapping matches: refused. Subject fields of a foreign certificate
	// never name a project by themselves.
	c, _ = certOf(t, pkix.Name{CommonName: "x", Organization: []string{"p1"}, OrganizationalUnit: []string{"admin"}}, false, clientAuth, other, otherKey)
	if id, err := ids.Identify(chainsFor(t, ids, c)); err == nil {
		t.Fatalf("unmapped certificate got %+v", id)
	}
	// No clientAuth in the extended key usage: refused.
	c, _ = certOf(t, pkix.Name{CommonName: "bob", OrganizationalUnit: []string{"storage"}}, false, nil, other, otherKey)
	chains, err := c.Verify(x509.VerifyOptions{Roots: ids.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.Identify(chains); err == nil {
		t.Fatal("a certificate without EKU clientAuth was accepted")
	}
	if _, err := ids.Identify(nil); err == nil {
		t.Fatal("no certificate accepted")
	}
	// Bad configuration is refused up front.
	if _, err := NewIdentities(nil, nil, nil); err == nil {
		t.Fatal("no CA accepted")
	}
	if _, err := NewIdentities(own.Certificate(), nil, []Mapping{{Project: "a/b"}}); err == nil {
		t.Fatal("invalid project accepted")
	}
}

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pemDecode(b)
	c, err := x509.ParseCertificate(blk)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
