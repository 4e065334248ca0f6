package kmip

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keywarden/keywarden/kms"
)

// Identities turns a verified client certificate into a kms.Identity.
//
// A certificate issued by Keywarden's own CA carries the caller in its
// subject: Organization = project, Common Name = user, each Organizational
// Unit = a role (see kmip/pki). A certificate of another trusted CA is
// mapped by configuration: the first Mapping that matches it gives project,
// user and roles. Every client certificate must allow client
// authentication (extended key usage clientAuth).
type Identities struct {
	own      *x509.Certificate
	pool     *x509.CertPool
	mappings []Mapping
	cas      []*x509.Certificate // own first, then others: the CRL signers
	crl      crlState
}

// Mapping maps certificates of another CA to a caller. The match fields
// are all optional; each one set must hold: Issuer equals the issuer's
// Common Name or full distinguished name, SubjectCN the subject's Common
// Name, O one of its Organizations, OU one of its Organizational Units.
type Mapping struct {
	Issuer, SubjectCN, O, OU string

	Project string
	User    string // default: the subject's Common Name
	Roles   []string
}

// NewIdentities trusts own (Keywarden's CA, may be nil) and others.
func NewIdentities(own *x509.Certificate, others []*x509.Certificate, mappings []Mapping) (*Identities, error) {
	ids := &Identities{own: own, pool: x509.NewCertPool(), mappings: slices.Clone(mappings)}
	if own != nil {
		ids.pool.AddCert(own)
		ids.cas = append(ids.cas, own)
	}
	for _, c := range others {
		ids.pool.AddCert(c)
		ids.cas = append(ids.cas, c)
	}
	if own == nil && len(others) == 0 {
		return nil, errors.New("kmip: no CA to verify client certificates with")
	}
	for i, m := range ids.mappings {
		if err := (kms.Identity{Project: m.Project}).Validate(); err != nil {
			return nil, fmt.Errorf("kmip: mapping %d: invalid project %q", i+1, m.Project)
		}
	}
	return ids, nil
}

// Pool is the set of CAs client certificates are verified against.
func (ids *Identities) Pool() *x509.CertPool { return ids.pool }

// Identify maps the verified chains of a TLS connection to a caller.
func (ids *Identities) Identify(chains [][]*x509.Certificate) (kms.Identity, error) {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return kms.Identity{}, errors.New("kmip: no verified client certificate")
	}
	leaf := chains[0][0]
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return kms.Identity{}, errors.New("kmip: the client certificate does not allow client authentication (EKU clientAuth)")
	}
	if ids.Revoked(leaf) {
		return kms.Identity{}, &RevokedError{Serial: serialHex(leaf.SerialNumber.Bytes())}
	}
	for _, chain := range chains {
		if root := chain[len(chain)-1]; ids.own != nil && root.Equal(ids.own) {
			id, err := SubjectIdentity(leaf)
			id.Source = CASource(issuerOf(chain))
			return id, err
		}
	}
	for _, m := range ids.mappings {
		if m.matches(leaf) {
			user := m.User
			if user == "" {
				user = leaf.Subject.CommonName
			}
			return kms.Identity{Project: m.Project, User: user, Roles: slices.Clone(m.Roles),
				Source: CASource(issuerOf(chains[0]))}, nil
		}
	}
	return kms.Identity{}, fmt.Errorf("kmip: no mapping for the client certificate %q issued by %q",
		leaf.Subject.String(), leaf.Issuer.String())
}

// issuerOf is the CA that signed a verified chain's leaf.
func issuerOf(chain []*x509.Certificate) *x509.Certificate {
	if len(chain) > 1 {
		return chain[1]
	}
	return chain[0]
}

// CASource is the kms.Identity Source of callers whose certificate ca
// issued: "x509:" and the hex of the CA's Subject Key Identifier, or of
// the first 20 bytes of the SHA-256 of its public key when it has none. A
// user name certified by one CA never matches an ACL entry made for a user
// of another.
func CASource(ca *x509.Certificate) string {
	if len(ca.SubjectKeyId) > 0 {
		return "x509:" + hex.EncodeToString(ca.SubjectKeyId)
	}
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return "x509:" + hex.EncodeToString(sum[:20])
}

func (m Mapping) matches(c *x509.Certificate) bool {
	if m.Issuer != "" && m.Issuer != c.Issuer.CommonName && m.Issuer != c.Issuer.String() {
		return false
	}
	if m.SubjectCN != "" && m.SubjectCN != c.Subject.CommonName {
		return false
	}
	if m.O != "" && !slices.Contains(c.Subject.Organization, m.O) {
		return false
	}
	if m.OU != "" && !slices.Contains(c.Subject.OrganizationalUnit, m.OU) {
		return false
	}
	return true
}

// SubjectIdentity reads the caller from a certificate of Keywarden's CA:
// O = project, CN = user, OU = roles.
func SubjectIdentity(c *x509.Certificate) (kms.Identity, error) {
	if len(c.Subject.Organization) != 1 {
		return kms.Identity{}, errors.New("kmip: the client certificate must name exactly one project (O)")
	}
	id := kms.Identity{
		Project: c.Subject.Organization[0],
		User:    c.Subject.CommonName,
		Roles:   slices.Clone(c.Subject.OrganizationalUnit),
	}
	for i, r := range id.Roles {
		id.Roles[i] = strings.TrimSpace(r)
	}
	if err := id.Validate(); err != nil {
		return kms.Identity{}, fmt.Errorf("kmip: client certificate: %w", err)
	}
	return id, nil
}
