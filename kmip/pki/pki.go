// Package pki is Keywarden's built-in certificate authority for KMIP: the
// CA, the server certificate and client certificates, made in-process with
// cfssl (initca → local signer with server and client profiles → Sign).
//
// A client certificate names its caller in the subject: Organization =
// project, Common Name = user, one Organizational Unit per role. It allows
// client authentication only (EKU clientAuth), which KMIP servers require.
//
// Files in the CA directory: ca.pem, ca-key.pem (the CA), server.pem,
// server-key.pem (the KMIP server's RSA certificate), server-ecdsa.pem,
// server-ecdsa-key.pem (its ECDSA P-256 one: a TLS 1.2 client that offers
// only ECDHE-ECDSA suites, as PyKMIP's TLS 1.2 suite does, is served with
// it), server-p384.pem, server-p384-key.pem (an ECDSA P-384 one, issued
// for the Suite B TLS modes only),
// crl.pem (the certificates revoked) and issued/<serial>.pem (a copy of
// every certificate issued, for `keywarden pki list`). Keys are written
// 0600 and ca-key.pem is read only under the rule root.key is held to.
//
// The CA key is RSA 2048 (the default: every KMIP client verifies it) or
// ECDSA P-384 (Options.CAKeyType "ecdsa"), which signs with ECDSA-SHA384:
// the chain Suite B (RFC 6460) requires. ECDSA end-entity certificates
// allow digital signature only (no key encipherment, which ECDSA cannot do).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cflog "github.com/cloudflare/cfssl/log"

	"github.com/cloudflare/cfssl/config"
	"github.com/cloudflare/cfssl/csr"
	"github.com/cloudflare/cfssl/helpers"
	"github.com/cloudflare/cfssl/initca"
	"github.com/cloudflare/cfssl/signer"
	"github.com/cloudflare/cfssl/signer/local"

	kwcrypto "github.com/keywarden/keywarden/crypto"
)

// File names in a CA directory.
const (
	CAFile             = "ca.pem"
	CAKeyFile          = "ca-key.pem"
	ServerFile         = "server.pem"
	ServerKeyFile      = "server-key.pem"
	ECDSAServerFile    = "server-ecdsa.pem"
	ECDSAServerKeyFile = "server-ecdsa-key.pem"
	P384ServerFile     = "server-p384.pem"
	P384ServerKeyFile  = "server-p384-key.pem"
	CRLFile            = "crl.pem"
	IssuedDir          = "issued"
)

// Default validity periods.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 2 * 365 * 24 * time.Hour
	ClientValidity = 365 * 24 * time.Hour
)

// Options are the validity periods of what the CA issues (zero fields take
// the defaults above) and the CA's key type. CA and CAKeyType apply only
// when the CA is created.
type Options struct {
	CA, Server time.Duration
	// CAKeyType is "rsa" (2048 bits, the default) or "ecdsa" (P-384).
	CAKeyType string
}

// CA issues the certificates of one Keywarden deployment.
type CA struct {
	dir      string
	cert     *x509.Certificate
	certPEM  []byte
	key      crypto.Signer
	signer   *local.Signer
	serverLT time.Duration
}

var quiet sync.Once

// silence keeps cfssl's INFO and WARNING lines out of Keywarden's output;
// its failures reach callers as errors.
func silence() { quiet.Do(func() { cflog.Level = cflog.LevelCritical }) }

// LoadOrCreate opens the CA in dir, creating it (RSA 2048, ten years) if
// dir has none. created tells which.
func LoadOrCreate(dir string) (ca *CA, created bool, err error) {
	return LoadOrCreateWith(dir, Options{})
}

// LoadOrCreateWith is LoadOrCreate with chosen lifetimes and key type.
func LoadOrCreateWith(dir string, lt Options) (ca *CA, created bool, err error) {
	silence()
	caKey := &csr.KeyRequest{A: "rsa", S: 2048}
	switch lt.CAKeyType {
	case "", "rsa":
	case "ecdsa":
		caKey = &csr.KeyRequest{A: "ecdsa", S: 384}
	default:
		return nil, false, fmt.Errorf("pki: unknown CA key type %q (rsa or ecdsa)", lt.CAKeyType)
	}
	if lt.CA <= 0 {
		lt.CA = CAValidity
	}
	if lt.Server <= 0 {
		lt.Server = ServerValidity
	}
	defer func() {
		if ca != nil {
			ca.serverLT = lt.Server
		}
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	ca, err = Load(dir)
	if err == nil {
		return ca, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	certPEM, _, keyPEM, err := initca.New(&csr.CertificateRequest{
		CN:         "Keywarden KMIP CA",
		Names:      []csr.Name{{O: "Keywarden"}},
		KeyRequest: caKey,
		CA:         &csr.CAConfig{Expiry: lt.CA.String()},
	})
	if err != nil {
		return nil, false, fmt.Errorf("pki: create CA: %w", err)
	}
	// The key is linked into place first: if another process created the
	// CA meanwhile, its files win and are loaded instead.
	if err := writeNew(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadSoon(dir)
		}
		return nil, false, err
	}
	if err := writeNew(filepath.Join(dir, CAFile), certPEM, 0o644); err != nil {
		return nil, false, err
	}
	ca, err = Load(dir)
	return ca, err == nil, err
}

// loadSoon waits briefly for a CA another process is writing.
func loadSoon(dir string) (*CA, bool, error) {
	var err error
	for range 50 {
		var ca *CA
		if ca, err = Load(dir); err == nil {
			return ca, false, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, false, err
}

// Load opens an existing CA.
func Load(dir string) (*CA, error) {
	silence()
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := kwcrypto.ReadPrivateFile(filepath.Join(dir, CAKeyFile), "KMIP CA key")
	if err != nil {
		return nil, err
	}
	defer clear(keyPEM)
	cert, err := helpers.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", CAFile, err)
	}
	key, err := helpers.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", CAKeyFile, err)
	}
	s, err := local.NewSigner(key, cert, signer.DefaultSigAlgo(key), policy())
	if err != nil {
		return nil, fmt.Errorf("pki: signer: %w", err)
	}
	return &CA{dir: dir, cert: cert, certPEM: certPEM, key: key, signer: s, serverLT: ServerValidity}, nil
}

func policy() *config.Signing {
	return &config.Signing{
		Profiles: map[string]*config.SigningProfile{
			"server": {
				Usage:  []string{"signing", "key encipherment", "server auth"},
				Expiry: ServerValidity,
			},
			"client": {
				Usage:  []string{"signing", "key encipherment", "client auth"},
				Expiry: ClientValidity,
			},
			"server-ec": {
				Usage:  []string{"signing", "server auth"},
				Expiry: ServerValidity,
			},
			"client-ec": {
				Usage:  []string{"signing", "client auth"},
				Expiry: ClientValidity,
			},
		},
		Default: &config.SigningProfile{Usage: []string{"signing"}, Expiry: ClientValidity},
	}
}

// Dir is where the CA's files are.
func (ca *CA) Dir() string { return ca.dir }

// Certificate is the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM is the CA certificate in PEM, what clients trust.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// KeyType is the CA key's type: "rsa" or "ecdsa-p384" (or "ecdsa-p256"
// and so on for a CA made elsewhere), what Suite B checks.
func (ca *CA) KeyType() string { return KeyTypeOf(ca.cert) }

// KeyTypeOf names a certificate's key: "rsa", "ecdsa-p256",
// "ecdsa-p384", or its algorithm's name.
func KeyTypeOf(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "rsa"
	case *ecdsa.PublicKey:
		return "ecdsa-p" + strconv.Itoa(k.Curve.Params().BitSize)
	}
	return strings.ToLower(c.PublicKeyAlgorithm.String())
}

// ClientRequest describes a client certificate.
type ClientRequest struct {
	Project string
	User    string
	Roles   []string
	// KeyType is "rsa" (2048 bits, the default: every KMIP client takes
	// it), "ecdsa" (P-256) or "ecdsa-p384".
	KeyType string
	// Validity defaults to ClientValidity.
	Validity time.Duration
}

// IssueClient makes a client key and certificate for a caller.
func (ca *CA) IssueClient(r ClientRequest) (certPEM, keyPEM []byte, err error) {
	if r.Project == "" || r.User == "" {
		return nil, nil, errors.New("pki: a client certificate needs a project and a user")
	}
	kr := &csr.KeyRequest{A: "rsa", S: 2048}
	switch r.KeyType {
	case "", "rsa":
	case "ecdsa", "ecdsa-p256":
		kr = &csr.KeyRequest{A: "ecdsa", S: 256}
	case "ecdsa-p384":
		kr = &csr.KeyRequest{A: "ecdsa", S: 384}
	default:
		return nil, nil, fmt.Errorf("pki: unknown key type %q (rsa, ecdsa or ecdsa-p384)", r.KeyType)
	}
	names := []csr.Name{{O: r.Project}}
	for _, role := range r.Roles {
		names = append(names, csr.Name{OU: role})
	}
	return ca.issue("client", &csr.CertificateRequest{CN: r.User, Names: names, KeyRequest: kr}, r.Validity)
}

// IssueServer makes a server key (RSA 2048) and certificate for hosts
// (DNS names or IP addresses).
func (ca *CA) IssueServer(hosts []string) (certPEM, keyPEM []byte, err error) {
	return ca.issueServer(hosts, &csr.KeyRequest{A: "rsa", S: 2048})
}

func (ca *CA) issueServer(hosts []string, kr *csr.KeyRequest) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("pki: a server certificate needs hosts")
	}
	return ca.issue("server", &csr.CertificateRequest{
		CN: hosts[0], Names: []csr.Name{{O: "Keywarden"}}, Hosts: hosts, KeyRequest: kr,
	}, ca.serverLT)
}

func (ca *CA) issue(profile string, req *csr.CertificateRequest, validity time.Duration) ([]byte, []byte, error) {
	if req.KeyRequest != nil && req.KeyRequest.A == "ecdsa" {
		profile += "-ec"
	}
	csrPEM, keyPEM, err := csr.ParseRequest(req)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: key and request: %w", err)
	}
	sr := signer.SignRequest{Request: string(csrPEM), Profile: profile, Hosts: req.Hosts}
	if validity > 0 {
		now := time.Now()
		sr.NotBefore, sr.NotAfter = now.Add(-5*time.Minute), now.Add(validity)
	}
	certPEM, err := ca.signer.Sign(sr)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: sign: %w", err)
	}
	if err := ca.record(certPEM); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// EnsureServer returns the server certificate and key files (RSA),
// issuing them for hosts when there are none, when they have expired or
// were not issued by this CA, or when they do not cover every host. It
// does the same for the ECDSA pair (ECDSAServerFile, ECDSAServerKeyFile).
func (ca *CA) EnsureServer(hosts []string) (certFile, keyFile string, created bool, err error) {
	certFile, keyFile, created, err = ca.ensureServer(hosts, ServerFile, ServerKeyFile, &csr.KeyRequest{A: "rsa", S: 2048})
	if err != nil {
		return "", "", false, err
	}
	_, _, ecCreated, err := ca.ensureServer(hosts, ECDSAServerFile, ECDSAServerKeyFile, &csr.KeyRequest{A: "ecdsa", S: 256})
	if err != nil {
		return "", "", false, err
	}
	return certFile, keyFile, created || ecCreated, nil
}

// EnsureP384Server is EnsureServer for the ECDSA P-384 pair
// (P384ServerFile, P384ServerKeyFile) the Suite B modes serve.
func (ca *CA) EnsureP384Server(hosts []string) (certFile, keyFile string, created bool, err error) {
	return ca.ensureServer(hosts, P384ServerFile, P384ServerKeyFile, &csr.KeyRequest{A: "ecdsa", S: 384})
}

func (ca *CA) ensureServer(hosts []string, certName, keyName string, kr *csr.KeyRequest) (certFile, keyFile string, created bool, err error) {
	certFile = filepath.Join(ca.dir, certName)
	keyFile = filepath.Join(ca.dir, keyName)
	if ca.serverUsable(certFile, hosts) {
		if _, err := os.Stat(keyFile); err == nil {
			return certFile, keyFile, false, nil
		}
	}
	certPEM, keyPEM, err := ca.issueServer(hosts, kr)
	if err != nil {
		return "", "", false, err
	}
	if err := writeReplace(keyFile, keyPEM, 0o600); err != nil {
		return "", "", false, err
	}
	if err := writeReplace(certFile, certPEM, 0o644); err != nil {
		return "", "", false, err
	}
	return certFile, keyFile, true, nil
}

func (ca *CA) serverUsable(certFile string, hosts []string) bool {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return false
	}
	c, err := helpers.ParseCertificatePEM(b)
	if err != nil || time.Now().After(c.NotAfter.Add(-24*time.Hour)) || c.CheckSignatureFrom(ca.cert) != nil {
		return false
	}
	for _, h := range hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// WriteClient writes a client's files into dir: client.pem, client-key.pem
// and ca.pem (the CA that issued the server certificate too).
func (ca *CA) WriteClient(dir string, certPEM, keyPEM []byte) (paths []string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"client-key.pem", keyPEM, 0o600},
		{"client.pem", certPEM, 0o644},
		{"ca.pem", ca.certPEM, 0o644},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeReplace(p, f.data, f.mode); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return slices.Clip(paths), nil
}

// writeNew writes path, failing with fs.ErrExist if it exists.
func writeNew(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return os.Link(tmp, path)
}

// writeReplace writes path atomically, replacing it.
func writeReplace(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func writeTemp(path string, data []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}
