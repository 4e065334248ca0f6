package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/keywarden/keywarden/crypto"
)

// TLSFiles are the TLS settings of the etcd client, as files.
type TLSFiles struct {
	CAFile     string // PEM CAs that sign the etcd servers' certificates (default: the system's)
	CertFile   string // client certificate, for clusters with --client-cert-auth
	KeyFile    string // its key (mode 0600 or stricter)
	ServerName string // name to verify in the servers' certificates (default: the endpoint's host)
}

// Empty reports whether no TLS setting is given.
func (f TLSFiles) Empty() bool { return f == TLSFiles{} }

// Config loads the files into a client TLS configuration (TLS 1.2 or
// later); nil when f is empty.
func (f TLSFiles) Config() (*tls.Config, error) {
	if f.Empty() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		var err error
		if c.RootCAs, err = crypto.LoadCAPool(f.CAFile, "etcd store: ca_file"); err != nil {
			return nil, err
		}
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("etcd store: cert_file and key_file go together")
	}
	if f.CertFile != "" {
		key, err := crypto.ReadPrivateFile(f.KeyFile, "etcd client key")
		if err != nil {
			return nil, fmt.Errorf("etcd store: %w", err)
		}
		defer clear(key)
		cert, err := os.ReadFile(f.CertFile)
		if err != nil {
			return nil, fmt.Errorf("etcd store: cert_file: %w", err)
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("etcd store: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	if f.ServerName != "" {
		// gRPC sets the name to verify from the endpoint, whatever the
		// configuration says: verify the chain here, against ServerName.
		roots := c.RootCAs
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("etcd store: the server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, DNSName: f.ServerName, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return c, nil
}

// CheckEndpoints refuses endpoints that would carry the store in clear
// over a network: an http:// endpoint (or one without a scheme when no TLS
// is configured) whose host is not loopback, unless allowHTTP. With TLS
// configured, an http:// endpoint is refused outright: the settings would
// not apply to it.
func CheckEndpoints(endpoints []string, tlsOn, allowHTTP bool) error {
	for _, e := range endpoints {
		scheme, host := "", e
		if u, err := url.Parse(e); err == nil && strings.Contains(e, "://") {
			scheme, host = u.Scheme, u.Host
		}
		switch scheme {
		case "https", "unixs":
			continue
		case "", "http", "unix":
		default:
			return fmt.Errorf("etcd store: endpoint %q: unknown scheme %q (https:// or http://)", e, scheme)
		}
		if scheme == "unix" {
			continue // a local socket
		}
		if tlsOn && scheme == "" {
			continue // clientv3 speaks TLS to it
		}
		if tlsOn {
			return fmt.Errorf("etcd store: endpoint %q is http:// but TLS is configured: use https://", e)
		}
		if !allowHTTP && !loopback(host) {
			return fmt.Errorf("etcd store: endpoint %q is plain http to another host: use https:// with the TLS "+
				"options (ca_file, cert_file, key_file), or set allow_insecure_http if the network is trusted", e)
		}
	}
	return nil
}

func loopback(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
