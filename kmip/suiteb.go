package kmip

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// SuiteB is a Suite B TLS mode of the KMIP listener: what the KMIP
// Profiles v1.4 Suite B minLOS_128 and minLOS_192 server profiles require
// of the connection (RFC 6460). Off, the listener's usual policy applies.
//
//   - 128: TLS 1.2 only; TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and
//     TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384; ECDHE on P-256 or P-384;
//     certificates (server, client, their CAs) ECDSA on P-256 or P-384,
//     signed with ECDSA-SHA256 or ECDSA-SHA384.
//   - 192: TLS 1.2 only; TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384; ECDHE on
//     P-384; certificates ECDSA P-384 signed with ECDSA-SHA384.
//
// Query Profiles claims the matching Suite B server profile only in that
// mode (profiles.go).
type SuiteB int

// The Suite B modes, named by their minimum level of security.
const (
	SuiteBOff SuiteB = 0
	SuiteB128 SuiteB = 128
	SuiteB192 SuiteB = 192
)

func (m SuiteB) valid() bool { return m == SuiteBOff || m == SuiteB128 || m == SuiteB192 }

func (m SuiteB) suites() []uint16 {
	if m == SuiteB192 {
		return []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
	}
	return []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
}

func (m SuiteB) curves() []tls.CurveID {
	if m == SuiteB192 {
		return []tls.CurveID{tls.CurveP384}
	}
	return []tls.CurveID{tls.CurveP256, tls.CurveP384}
}

func (m SuiteB) sigAlgs() []x509.SignatureAlgorithm {
	if m == SuiteB192 {
		return []x509.SignatureAlgorithm{x509.ECDSAWithSHA384}
	}
	return []x509.SignatureAlgorithm{x509.ECDSAWithSHA256, x509.ECDSAWithSHA384}
}

// CheckCertificate tells why c may not be in a chain of this mode (server,
// client or CA), if it may not.
func (m SuiteB) CheckCertificate(c *x509.Certificate) error {
	k, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%q has a %v key, Suite B needs ECDSA", c.Subject.CommonName, c.PublicKeyAlgorithm)
	}
	okCurve := k.Curve == elliptic.P384() || (m == SuiteB128 && k.Curve == elliptic.P256())
	if !okCurve {
		return fmt.Errorf("%q is on %s, not allowed at Suite B minLOS %d", c.Subject.CommonName, k.Curve.Params().Name, int(m))
	}
	if !slices.Contains(m.sigAlgs(), c.SignatureAlgorithm) {
		return fmt.Errorf("%q is signed with %v, not allowed at Suite B minLOS %d", c.Subject.CommonName, c.SignatureAlgorithm, int(m))
	}
	return nil
}

// checkChain refuses a verified client chain with a certificate the mode
// does not allow.
func (m SuiteB) checkChain(chains [][]*x509.Certificate) error {
	if m == SuiteBOff {
		return nil
	}
	if len(chains) == 0 {
		return errors.New("kmip: no verified client certificate chain")
	}
	for _, c := range chains[0] {
		if err := m.CheckCertificate(c); err != nil {
			return fmt.Errorf("kmip: client certificate chain: %w", err)
		}
	}
	return nil
}

// serverCerts keeps the server certificates the mode allows, failing when
// none is left: a Suite B server without an ECDSA certificate of the right
// curve could claim the profile but never complete a Suite B handshake.
func (m SuiteB) serverCerts(certs []tls.Certificate) ([]tls.Certificate, error) {
	if m == SuiteBOff {
		return certs, nil
	}
	var out []tls.Certificate
	var why []error
	for _, c := range certs {
		leaf := c.Leaf
		if leaf == nil && len(c.Certificate) > 0 {
			var err error
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("kmip: server certificate: %w", err)
			}
		}
		if leaf == nil {
			continue
		}
		if err := m.CheckCertificate(leaf); err != nil {
			why = append(why, err)
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kmip: Suite B minLOS %d needs an ECDSA server certificate (P-384, or P-256 at 128) from an ECDSA CA: %w",
			int(m), errors.Join(why...))
	}
	return out, nil
}

// apply narrows c to the mode.
func (m SuiteB) apply(c *tls.Config) {
	if m == SuiteBOff {
		return
	}
	c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	c.CipherSuites = m.suites()
	c.CurvePreferences = m.curves()
}

func (m SuiteB) String() string {
	if m == SuiteBOff {
		return "off"
	}
	return fmt.Sprintf("Suite B minLOS %d", int(m))
}

// tlsListenerKey marks the contexts of requests that came over the KMIP
// TLS listener (they derive from Server.ctx); KMIP over HTTPS comes over
// the REST listener, whose TLS is not Suite B.
type tlsListenerKey struct{}

// suiteBOf is the Suite B mode a request's connection is in: the
// listener's over the KMIP port, none over HTTPS, so that Query Profiles
// claims Suite B only where it holds.
func (s *Server) suiteBOf(ctx context.Context) SuiteB {
	if ctx.Value(tlsListenerKey{}) == nil {
		return SuiteBOff
	}
	return s.suiteB
}
