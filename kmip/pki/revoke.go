package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cloudflare/cfssl/helpers"
)

// crlValidity is the Next Update a CRL announces. Keywarden itself never
// lets a revocation lapse: an old CRL keeps refusing what it lists.
const crlValidity = 365 * 24 * time.Hour

// SerialHex is how a certificate serial is written: lowercase hex of its
// bytes, as `pki list` shows it.
func SerialHex(n *big.Int) string { return fmt.Sprintf("%x", n.Bytes()) }

// ParseSerial reads a serial in hex, with or without 0x and colons
// (openssl's "serial=0A1B..." form too).
func ParseSerial(s string) (*big.Int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "serial=")
	t = strings.TrimPrefix(t, "0x")
	t = strings.ReplaceAll(t, ":", "")
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || t == "" || n.Sign() <= 0 {
		return nil, fmt.Errorf("pki: %q is not a certificate serial (hex, as `keywarden pki list` shows)", s)
	}
	return n, nil
}

// record keeps a copy of an issued certificate for List.
func (ca *CA) record(certPEM []byte) error {
	c, err := helpers.ParseCertificatePEM(certPEM)
	if err != nil {
		return fmt.Errorf("pki: the certificate just issued: %w", err)
	}
	dir := filepath.Join(ca.dir, IssuedDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeReplace(filepath.Join(dir, SerialHex(c.SerialNumber)+".pem"), certPEM, 0o644)
}

// Issued is a certificate the CA issued, as List shows it.
type Issued struct {
	Serial    string
	Subject   string
	Project   string // O
	User      string // CN
	Roles     []string
	Server    bool // a server certificate
	NotBefore time.Time
	NotAfter  time.Time
	Revoked   bool
	RevokedAt time.Time
}

// List returns the certificates the CA issued (those issued before it kept
// copies are not known), oldest first.
func (ca *CA) List() ([]Issued, error) {
	crl, err := ca.CRL()
	if err != nil {
		return nil, err
	}
	revoked := map[string]time.Time{}
	if crl != nil {
		for _, e := range crl.RevokedCertificateEntries {
			revoked[SerialHex(e.SerialNumber)] = e.RevocationTime
		}
	}
	entries, err := os.ReadDir(filepath.Join(ca.dir, IssuedDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []Issued
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(ca.dir, IssuedDir, e.Name()))
		if err != nil {
			return nil, err
		}
		c, err := helpers.ParseCertificatePEM(b)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", e.Name(), err)
		}
		it := Issued{
			Serial: SerialHex(c.SerialNumber), Subject: c.Subject.String(), User: c.Subject.CommonName,
			Roles: c.Subject.OrganizationalUnit, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
			Server: slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth),
		}
		if len(c.Subject.Organization) == 1 {
			it.Project = c.Subject.Organization[0]
		}
		it.RevokedAt, it.Revoked = revoked[it.Serial]
		out = append(out, it)
	}
	slices.SortStableFunc(out, func(a, b Issued) int { return a.NotBefore.Compare(b.NotBefore) })
	return out, nil
}

// CRL reads the CA's revocation list; nil when nothing was ever revoked.
func (ca *CA) CRL() (*x509.RevocationList, error) {
	b, err := os.ReadFile(filepath.Join(ca.dir, CRLFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "X509 CRL" {
		return nil, fmt.Errorf("pki: %s holds no X509 CRL", CRLFile)
	}
	crl, err := x509.ParseRevocationList(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", CRLFile, err)
	}
	if err := crl.CheckSignatureFrom(ca.cert); err != nil {
		return nil, fmt.Errorf("pki: %s is not signed by this CA: %w", CRLFile, err)
	}
	return crl, nil
}

// CertSerial checks that certPEM is a certificate this CA issued and
// returns its serial.
func (ca *CA) CertSerial(certPEM []byte) (*big.Int, error) {
	c, err := helpers.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := c.CheckSignatureFrom(ca.cert); err != nil {
		return nil, fmt.Errorf("pki: the certificate %q was not issued by this CA (%s)", c.Subject.String(), ca.cert.Subject.String())
	}
	return c.SerialNumber, nil
}

// Revoke adds serial to the CRL (crl.pem, written atomically) and returns
// whether it was already there. A running server reads the new CRL within
// seconds and refuses the certificate from then on.
func (ca *CA) Revoke(serial *big.Int) (already bool, err error) {
	unlock, err := ca.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	old, err := ca.CRL()
	if err != nil {
		return false, err
	}
	now := time.Now().UTC()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(crlValidity)}
	if old != nil {
		for _, e := range old.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(serial) == 0 {
				return true, nil
			}
		}
		tmpl.RevokedCertificateEntries = old.RevokedCertificateEntries
		tmpl.Number = new(big.Int).Add(old.Number, big.NewInt(1))
	}
	tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
		x509.RevocationListEntry{SerialNumber: serial, RevocationTime: now})
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		return false, fmt.Errorf("pki: sign the CRL: %w", err)
	}
	return false, writeReplace(filepath.Join(ca.dir, CRLFile), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
}

// lock serialises CRL updates between processes.
func (ca *CA) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(ca.dir, ".crl.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
