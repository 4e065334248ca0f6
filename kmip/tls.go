package kmip

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/crypto"
)

// TLSOptions is the TLS policy of the KMIP listener beyond its defaults.
type TLSOptions struct {
	// LegacyCipherSuites adds the TLS 1.2 suites without forward secrecy
	// or with CBC (RSA key exchange, AES-CBC-SHA256: the KMIP profiles'
	// suites) for clients that offer nothing better.
	LegacyCipherSuites bool
	// SuiteB, when not SuiteBOff, restricts the listener to a Suite B
	// mode (suiteb.go); it excludes LegacyCipherSuites.
	SuiteB SuiteB
}

// TLSConfig is the server side of KMIP's TLS: 1.2 or 1.3, a client
// certificate required, verified against ids' CAs, checked against the
// CRL ids holds and mapped to a caller during the handshake (a certificate
// no mapping covers, or a revoked one, is refused there). The TLS 1.2
// suites are the forward-secret AEAD ones unless opts says otherwise; with
// an ECDSA certificate among certs, a client offering only the
// ECDHE-ECDSA suites (PyKMIP's TLS 1.2 suite) is served too. A Suite B
// mode narrows all of it to that mode (certs must have been filtered by
// SuiteB.serverCerts).
func TLSConfig(certs []tls.Certificate, ids *Identities, opts TLSOptions) *tls.Config {
	c := crypto.ServerTLS(opts.LegacyCipherSuites)
	c.Certificates = certs
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = ids.Pool()
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := opts.SuiteB.checkChain(cs.VerifiedChains); err != nil {
			return err
		}
		_, err := ids.Identify(cs.VerifiedChains)
		return err
	}
	opts.SuiteB.apply(c)
	return c
}

// RevokedError refuses a certificate the CRL lists.
type RevokedError struct {
	Serial string // hex
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("kmip: the client certificate (serial %s) is revoked", e.Serial)
}

// revocation is a loaded CRL.
type revocation struct {
	issuer  *x509.Certificate
	serials map[string]struct{} // hex
}

// crlState is the CRL side of Identities: the latest CRL of each CA,
// keyed by the CA certificate's DER.
type crlState struct {
	mu        sync.Mutex
	cur       atomic.Pointer[map[string]*revocation]
	listeners []func()
}

// SetCRL replaces the revocation list of the CA that signed it (DER or
// PEM), one of the CAs ids trusts. Every handshake after it returns checks
// it; connections of certificates it revokes are closed.
func (ids *Identities) SetCRL(data []byte) error {
	if blk, _ := pem.Decode(data); blk != nil {
		if blk.Type != "X509 CRL" {
			return fmt.Errorf("kmip: CRL: a PEM %q block, want X509 CRL", blk.Type)
		}
		data = blk.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return fmt.Errorf("kmip: CRL: %w", err)
	}
	var issuer *x509.Certificate
	for _, ca := range ids.cas {
		if bytes.Equal(crl.RawIssuer, ca.RawSubject) && crl.CheckSignatureFrom(ca) == nil {
			issuer = ca
			break
		}
	}
	if issuer == nil {
		return fmt.Errorf("kmip: the CRL of %q is not signed by a CA client certificates are verified with", crl.Issuer.String())
	}
	r := &revocation{issuer: issuer, serials: map[string]struct{}{}}
	for _, e := range crl.RevokedCertificateEntries {
		r.serials[serialHex(e.SerialNumber.Bytes())] = struct{}{}
	}
	ids.crl.mu.Lock()
	key := string(issuer.Raw)
	next := map[string]*revocation{key: r}
	if old := ids.crl.cur.Load(); old != nil {
		for k, v := range *old {
			if k != key {
				next[k] = v
			}
		}
	}
	ids.crl.cur.Store(&next)
	fns := slices.Clone(ids.crl.listeners)
	ids.crl.mu.Unlock()
	for _, f := range fns {
		f()
	}
	return nil
}

// Revoked reports whether a CRL of the certificate's issuer lists it.
func (ids *Identities) Revoked(c *x509.Certificate) bool {
	m := ids.crl.cur.Load()
	if m == nil {
		return false
	}
	serial := ""
	for _, r := range *m {
		if !issuedBy(c, r.issuer) {
			continue
		}
		if serial == "" {
			serial = serialHex(c.SerialNumber.Bytes())
		}
		if _, bad := r.serials[serial]; bad {
			return true
		}
	}
	return false
}

// issuedBy tells whether ca's name and key identifier are those c names as
// its issuer (the chain was verified already).
func issuedBy(c, ca *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, ca.RawSubject) &&
		(len(c.AuthorityKeyId) == 0 || len(ca.SubjectKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, ca.SubjectKeyId))
}

// RevokedCount is how many serials the loaded CRLs list.
func (ids *Identities) RevokedCount() int {
	n := 0
	if m := ids.crl.cur.Load(); m != nil {
		for _, r := range *m {
			n += len(r.serials)
		}
	}
	return n
}

func (ids *Identities) onCRL(f func()) {
	ids.crl.mu.Lock()
	ids.crl.listeners = append(ids.crl.listeners, f)
	ids.crl.mu.Unlock()
}

func serialHex(b []byte) string { return fmt.Sprintf("%x", b) }

// WatchCRL loads the CRL at path now (a missing file is no revocation; a
// bad one an error) and then, until ctx ends, every interval: when the file
// changes, the new CRL replaces the old one. A CRL that does not load
// later is logged and the previous one kept.
func (ids *Identities) WatchCRL(ctx context.Context, path string, every time.Duration, log *slog.Logger) error {
	last, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err == nil {
		if err := ids.SetCRL(last); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) || last != nil {
					log.Error("kmip: cannot read the CRL; keeping the one loaded", "path", path, "err", err)
				}
				continue
			}
			if bytes.Equal(b, last) {
				continue
			}
			if err := ids.SetCRL(b); err != nil {
				log.Error("kmip: the CRL changed but does not load; keeping the previous one", "path", path, "err", err)
			} else {
				log.Info("kmip: CRL reloaded", "path", path, "revoked", ids.RevokedCount())
			}
			last = b
		}
	}()
	return nil
}

// dropRevoked closes the connections whose certificate the CRL now revokes.
func (s *Server) dropRevoked() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if leaf := c.leaf.Load(); leaf != nil && s.ids.Revoked(leaf) {
			s.log.Info("kmip: closing the connection of a revoked certificate", "conn", c.id,
				"serial", serialHex(leaf.SerialNumber.Bytes()))
			c.nc.Close()
		}
	}
}
