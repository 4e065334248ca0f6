package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kmip"
	"github.com/keywarden/keywarden/kmip/pki"
	"github.com/keywarden/keywarden/kms"
)

// kmipOptions is the `kmip:` section of the config file.
type kmipOptions struct {
	Addr         string       `yaml:"addr"`          // default 127.0.0.1:5696; empty: KMIP off
	MaxMessage   int          `yaml:"max_message"`   // bytes, default 1 MiB
	ReadTimeout  kmipDuration `yaml:"read_timeout"`  // one message, once begun; default 30s
	WriteTimeout kmipDuration `yaml:"write_timeout"` // one response; default 30s
	IdleTimeout  kmipDuration `yaml:"idle_timeout"`  // between messages; default 5m
	MaxInFlight  int          `yaml:"max_in_flight"` // requests per connection; default 32
	// HandshakeTimeout bounds the TLS handshake; default 5s.
	HandshakeTimeout kmipDuration `yaml:"handshake_timeout"`
	// MaxConnections and MaxConnectionsPerSource cap the open connections,
	// in all and from one IP address; defaults 1024 and 128.
	MaxConnections          int `yaml:"max_connections"`
	MaxConnectionsPerSource int `yaml:"max_connections_per_source"`
	// MaxBatchItems caps the batch items of one request; default 64.
	MaxBatchItems int `yaml:"max_batch_items"`
	// LegacyCipherSuites adds the TLS 1.2 suites without forward secrecy
	// or with CBC (the KMIP profiles' RSA-key-exchange suites).
	LegacyCipherSuites bool `yaml:"legacy_cipher_suites"`
	// TLSProfile is "default" (the usual policy) or a Suite B mode,
	// "suiteb-128" or "suiteb-192": TLS 1.2 with only the Suite B
	// suites, curves and ECDSA certificates, and the Suite B server
	// profile claimed in Query Profiles. It needs an ECDSA CA.
	TLSProfile string `yaml:"tls_profile"`
	// CAKeyType is the built-in CA's key when it is created: "rsa" (the
	// default; "ecdsa" with a Suite B tls_profile) or "ecdsa" (P-384).
	CAKeyType string `yaml:"ca_key_type"`
	// CAValidity is the built-in CA's lifetime when it is created (default
	// 10 years); ServerCertValidity the server certificates' (default 2
	// years; renewed at start-up a day before they expire).
	CAValidity         kmipDuration `yaml:"ca_validity"`
	ServerCertValidity kmipDuration `yaml:"server_cert_validity"`
	// Hosts are extra DNS names or addresses for the server certificate
	// (localhost, 127.0.0.1, ::1, the host name and the listen host are
	// always in it).
	Hosts []string `yaml:"hosts"`
	// ClientCAs are PEM files of other CAs whose client certificates are
	// accepted; Mappings say which project and roles they get.
	ClientCAs []string      `yaml:"client_cas"`
	Mappings  []kmipMapping `yaml:"mappings"`
	// ClientCRLs are CRL files (PEM or DER) of those CAs, re-read when
	// they change, as the built-in CA's crl.pem is.
	ClientCRLs []string `yaml:"client_crls"`
}

// kmipMapping maps client certificates of another CA to a caller: every
// match field given must hold (issuer: its CN or full DN; subject_cn; o and
// ou: one of the subject's), the first matching mapping wins.
type kmipMapping struct {
	Issuer    string   `yaml:"issuer"`
	SubjectCN string   `yaml:"subject_cn"`
	O         string   `yaml:"o"`
	OU        string   `yaml:"ou"`
	Project   string   `yaml:"project"`
	User      string   `yaml:"user"` // default: the subject's CN
	Roles     []string `yaml:"roles"`
}

// kmipDuration reads "30s", "5m" or a number of seconds.
type kmipDuration time.Duration

func (d *kmipDuration) UnmarshalYAML(n *yaml.Node) error {
	if secs, err := strconv.ParseFloat(n.Value, 64); err == nil {
		*d = kmipDuration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (30s, 5m or seconds)", n.Line, n.Value)
	}
	*d = kmipDuration(v)
	return nil
}

func defaultKMIPOptions() kmipOptions {
	return kmipOptions{
		Addr:         "127.0.0.1:5696",
		MaxMessage:   kmip.DefaultMaxMessage,
		ReadTimeout:  kmipDuration(kmip.DefaultReadTimeout),
		WriteTimeout: kmipDuration(kmip.DefaultWriteTimeout),
		IdleTimeout:  kmipDuration(kmip.DefaultIdleTimeout),
		MaxInFlight:  kmip.DefaultMaxInFlight,

		HandshakeTimeout:        kmipDuration(kmip.DefaultHandshakeTimeout),
		MaxConnections:          kmip.DefaultMaxConns,
		MaxConnectionsPerSource: kmip.DefaultMaxConnsPerSource,
		MaxBatchItems:           kmip.DefaultMaxBatchItems,
		CAValidity:              kmipDuration(pki.CAValidity),
		ServerCertValidity:      kmipDuration(pki.ServerValidity),
	}
}

// crlReload is how often the server looks for a new CRL.
const crlReload = 2 * time.Second

// check refuses values the server would silently replace by its defaults.
func (o kmipOptions) check() error {
	for name, v := range map[string]int{
		"max_message": o.MaxMessage, "max_in_flight": o.MaxInFlight, "max_connections": o.MaxConnections,
		"max_connections_per_source": o.MaxConnectionsPerSource, "max_batch_items": o.MaxBatchItems,
	} {
		if v <= 0 {
			return fmt.Errorf("config: kmip.%s must be positive, got %d", name, v)
		}
	}
	for name, d := range map[string]kmipDuration{
		"read_timeout": o.ReadTimeout, "write_timeout": o.WriteTimeout, "idle_timeout": o.IdleTimeout,
		"handshake_timeout": o.HandshakeTimeout, "ca_validity": o.CAValidity, "server_cert_validity": o.ServerCertValidity,
	} {
		if d <= 0 {
			return fmt.Errorf("config: kmip.%s must be positive", name)
		}
	}
	if _, err := o.suiteB(); err != nil {
		return err
	}
	if o.CAKeyType != "" && o.CAKeyType != "rsa" && o.CAKeyType != "ecdsa" {
		return fmt.Errorf("config: kmip.ca_key_type %q: rsa or ecdsa", o.CAKeyType)
	}
	if o.MaxConnectionsPerSource > o.MaxConnections {
		return fmt.Errorf("config: kmip.max_connections_per_source (%d) is above max_connections (%d)",
			o.MaxConnectionsPerSource, o.MaxConnections)
	}
	return nil
}

// suiteB reads tls_profile.
func (o kmipOptions) suiteB() (kmip.SuiteB, error) {
	var m kmip.SuiteB
	switch o.TLSProfile {
	case "", "default":
	case "suiteb-128":
		m = kmip.SuiteB128
	case "suiteb-192":
		m = kmip.SuiteB192
	default:
		return 0, fmt.Errorf("config: kmip.tls_profile %q: default, suiteb-128 or suiteb-192", o.TLSProfile)
	}
	if m != kmip.SuiteBOff && o.LegacyCipherSuites {
		return 0, fmt.Errorf("config: kmip.tls_profile %s excludes kmip.legacy_cipher_suites", o.TLSProfile)
	}
	if m != kmip.SuiteBOff && o.CAKeyType == "rsa" {
		return 0, fmt.Errorf("config: kmip.tls_profile %s needs kmip.ca_key_type ecdsa", o.TLSProfile)
	}
	return m, nil
}

// startKMIP creates the CA and server certificate in dataDir on first run,
// logs where they are, listens on opts.Addr and serves in the background.
func startKMIP(ctx context.Context, svc *kms.Service, dataDir string, opts kmipOptions, m *metrics, log *slog.Logger) (addr string, srv *kmip.Server, err error) {
	suiteB, err := opts.suiteB()
	if err != nil {
		return "", nil, err
	}
	caKey := opts.CAKeyType
	if caKey == "" && suiteB != kmip.SuiteBOff {
		caKey = "ecdsa"
	}
	ca, created, err := pki.LoadOrCreateWith(kmipCADir(dataDir), pki.Options{
		CA: time.Duration(opts.CAValidity), Server: time.Duration(opts.ServerCertValidity), CAKeyType: caKey})
	if err != nil {
		return "", nil, err
	}
	if created {
		log.Info("kmip: created the KMIP certificate authority",
			"ca", filepath.Join(ca.Dir(), pki.CAFile), "key", filepath.Join(ca.Dir(), pki.CAKeyFile), "key_type", ca.KeyType())
	}
	if !created && opts.CAKeyType != "" && !strings.HasPrefix(ca.KeyType(), opts.CAKeyType) {
		log.Warn("kmip: the CA exists already; kmip.ca_key_type applies only when it is created",
			"ca_key_type", opts.CAKeyType, "ca", ca.KeyType())
	}
	if suiteB != kmip.SuiteBOff {
		if err := suiteB.CheckCertificate(ca.Certificate()); err != nil {
			return "", nil, fmt.Errorf("kmip.tls_profile %s: the CA in %s cannot make a Suite B chain (%v); "+
				"it was created %s: start from a new CA (`keywarden pki init --key-type ecdsa`, then reissue the client certificates)",
				opts.TLSProfile, ca.Dir(), err, ca.KeyType())
		}
	}
	hosts := serverHosts(opts.Addr, opts.Hosts)
	certFile, keyFile, issued, err := ca.EnsureServer(hosts)
	if err != nil {
		return "", nil, err
	}
	if issued {
		log.Info("kmip: issued the server certificate", "cert", certFile, "key", keyFile, "hosts", hosts)
	}
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return "", nil, err
	}
	ecCert, err := loadKeyPair(filepath.Join(ca.Dir(), pki.ECDSAServerFile), filepath.Join(ca.Dir(), pki.ECDSAServerKeyFile))
	if err != nil {
		return "", nil, err
	}
	extra := []tls.Certificate{ecCert}
	if suiteB != kmip.SuiteBOff {
		p384File, p384Key, issued, err := ca.EnsureP384Server(hosts)
		if err != nil {
			return "", nil, err
		}
		if issued {
			log.Info("kmip: issued the P-384 server certificate", "cert", p384File, "key", p384Key, "hosts", hosts)
		}
		p384, err := loadKeyPair(p384File, p384Key)
		if err != nil {
			return "", nil, err
		}
		extra = append(extra, p384)
	}
	others, err := readCAFiles(opts.ClientCAs)
	if err != nil {
		return "", nil, err
	}
	mappings := make([]kmip.Mapping, 0, len(opts.Mappings))
	for i, m := range opts.Mappings {
		for _, r := range m.Roles {
			if !knownRole(r) {
				return "", nil, fmt.Errorf("kmip.mappings[%d]: unknown role %q", i, r)
			}
		}
		mappings = append(mappings, kmip.Mapping{
			Issuer: m.Issuer, SubjectCN: m.SubjectCN, O: m.O, OU: m.OU,
			Project: m.Project, User: m.User, Roles: m.Roles,
		})
	}
	if len(mappings) > 0 && len(others) == 0 {
		log.Warn("kmip: mappings are configured but no client_cas: only Keywarden's CA is trusted")
	}
	ids, err := kmip.NewIdentities(ca.Certificate(), others, mappings)
	if err != nil {
		return "", nil, err
	}
	crlFile := filepath.Join(ca.Dir(), pki.CRLFile)
	if err := ids.WatchCRL(ctx, crlFile, crlReload, log); err != nil {
		return "", nil, err
	}
	for _, f := range opts.ClientCRLs {
		if _, err := os.Stat(f); err != nil {
			return "", nil, fmt.Errorf("kmip.client_crls: %w", err)
		}
		if err := ids.WatchCRL(ctx, f, crlReload, log); err != nil {
			return "", nil, fmt.Errorf("kmip.client_crls: %w", err)
		}
	}
	opts.MaxConnections = fitFileLimit(opts.MaxConnections, log)
	opts.MaxConnectionsPerSource = min(opts.MaxConnectionsPerSource, opts.MaxConnections)
	kcfg := kmip.Config{
		Service: svc, Certificate: cert, ExtraCertificates: extra, Identities: ids, MaxMessage: opts.MaxMessage,
		ReadTimeout: time.Duration(opts.ReadTimeout), WriteTimeout: time.Duration(opts.WriteTimeout),
		IdleTimeout: time.Duration(opts.IdleTimeout), MaxInFlight: opts.MaxInFlight, Logger: log,
		HandshakeTimeout: time.Duration(opts.HandshakeTimeout), MaxConns: opts.MaxConnections,
		MaxConnsPerSource: opts.MaxConnectionsPerSource, MaxBatchItems: opts.MaxBatchItems,
		TLS: kmip.TLSOptions{LegacyCipherSuites: opts.LegacyCipherSuites, SuiteB: suiteB},
	}
	if m != nil {
		kcfg.Observe, kcfg.ObserveConn = m.observeKMIP, m.observeKMIPConn
	}
	srv, err = kmip.NewServer(kcfg)
	if err != nil {
		return "", nil, err
	}
	if m != nil {
		m.kmipOpenConns(srv.OpenConns)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return "", nil, err
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, kmip.ErrServerClosed) {
			log.Error("kmip: listener stopped", "err", err)
		}
	}()
	log.Info("kmip: serving KMIP 1.0-1.4, 2.0, 2.1 over mutual TLS", "addr", ln.Addr().String(), "tls", suiteB.String(),
		"ca", filepath.Join(ca.Dir(), pki.CAFile), "crl", crlFile, "revoked", ids.RevokedCount(),
		"client_certs", "keywarden pki issue-client --data-dir "+dataDir+" --project P --user U --roles admin --out DIR")
	return ln.Addr().String(), srv, nil
}

// loadKeyPair loads a server certificate whose key file is held to the
// rule of every key file (crypto.CheckPrivateFile).
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	keyPEM, err := crypto.ReadPrivateFile(keyFile, "KMIP server key")
	if err != nil {
		return tls.Certificate{}, err
	}
	defer clear(keyPEM)
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// fitFileLimit lowers the KMIP connection cap to fit the process's
// open-file limit, keeping a quarter of it (at least 64) for the store, the
// logs, REST and metrics: a flood is then refused at the cap instead of
// exhausting descriptors the rest of the process needs.
func fitFileLimit(maxConns int, log *slog.Logger) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return maxConns
	}
	reserve := max(64, lim.Cur/4)
	if lim.Cur <= reserve {
		return maxConns
	}
	if fit := int(lim.Cur - reserve); maxConns > fit {
		log.Warn("kmip: max_connections lowered to fit the open-file limit; raise LimitNOFILE to allow more",
			"max_connections", maxConns, "now", fit, "nofile", lim.Cur)
		return fit
	}
	return maxConns
}

// serverHosts are the names the server certificate covers, "localhost"
// first (it becomes the Common Name).
func serverHosts(addr string, extra []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if h, _, err := net.SplitHostPort(addr); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	var out []string
	for _, h := range append(hosts, extra...) {
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// readCAFiles reads every certificate in PEM files.
func readCAFiles(files []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("kmip.client_cas: %w", err)
		}
		n := 0
		for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
			if blk.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("kmip.client_cas: %s: %w", f, err)
			}
			out = append(out, c)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("kmip.client_cas: %s holds no certificate", f)
		}
	}
	return out, nil
}
