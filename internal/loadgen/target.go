package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keywarden/keywarden/crypto"
)

// target is the server under load.
type target struct {
	addr, host string
	headers    string // extra header lines, CRLF-terminated
	tls        *tls.Config
	// serverPIDs are the processes whose CPU is the server's: the started
	// server, or what --server-pid named (a peer's workers).
	serverPIDs []int
}

// dial opens one connection to the target (TLS when it has a config).
func (t target) dial() (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if t.tls == nil {
		return d.Dial("tcp", t.addr)
	}
	return (&tls.Dialer{NetDialer: &d, Config: t.tls}).Dial("tcp", t.addr)
}

// restTarget is the target of --target URL: any Barbican v1 API, with
// a token (X-Auth-Token) or the headers Barbican's no-auth pipeline reads
// (X-Project-Id, X-Roles).
func restTarget(cfg Config) (target, error) {
	u, err := url.Parse(cfg.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return target{}, fmt.Errorf("--target %q: want http://host:port or https://host:port (the API root, without /v1)", cfg.Target)
	}
	if strings.ContainsAny(cfg.Token+cfg.Project+cfg.Roles, "\r\n") {
		return target{}, errors.New("--token, --project and --roles must not hold line breaks")
	}
	tgt := target{addr: u.Host, host: u.Host}
	if u.Port() == "" {
		tgt.addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if u.Scheme == "https" {
		if tgt.tls, err = clientTLS(cfg, u.Hostname()); err != nil {
			return target{}, err
		}
	}
	switch {
	case cfg.Keystone:
	case cfg.Token != "":
		tgt.headers = "X-Auth-Token: " + cfg.Token + "\r\n"
	case cfg.Project != "":
		roles := cfg.Roles
		if roles == "" {
			roles = "admin"
		}
		tgt.headers = "X-Project-Id: " + cfg.Project + "\r\nX-Roles: " + roles + "\r\n"
	default:
		return target{}, errors.New("--target needs --token, --keystone or --project (no-auth: X-Project-Id and X-Roles)")
	}
	tgt.serverPIDs = cfg.ServerPIDs
	return tgt, nil
}

// probe checks that the target answers at all before a timed run, so that
// an unreachable server or a TLS failure is one clear error, not a table of
// failed requests.
func (t target) probe(what string) error {
	c, err := t.dial()
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, t.addr, explainTLS(err))
	}
	if tc, ok := c.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return fmt.Errorf("%s %s: TLS handshake: %w", what, t.addr, explainTLS(err))
		}
	}
	return c.Close()
}

// clientTLS is the client side of --target https:// and of KMIP: the CA
// that signed the server's certificate (default: the system's), a client
// certificate when given, and with LegacyCiphers the TLS 1.2 CBC and RSA
// key-exchange suites the KMIP profiles name (PyKMIP's server offers only
// those with an RSA certificate).
func clientTLS(cfg Config, host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if cfg.ServerName != "" {
		c.ServerName = cfg.ServerName
	}
	if cfg.CACert != "" {
		pool, err := crypto.LoadCAPool(cfg.CACert, "--ca")
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if cfg.ClientCert != "" || cfg.ClientKey != "" {
		if cfg.ClientCert == "" || cfg.ClientKey == "" {
			return nil, errors.New("--cert and --key go together")
		}
		cert, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("--cert %s / --key %s: %w", cfg.ClientCert, cfg.ClientKey, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if cfg.LegacyCiphers {
		// The suites are the client's offer; TLS 1.3 would skip them.
		c.MaxVersion = tls.VersionTLS12
		c.CipherSuites = crypto.ServerCipherSuites(true)
	}
	return c, nil
}

// explainTLS adds what to try to the TLS failures a user can fix with a flag.
func explainTLS(err error) error {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	// The server's alerts reach a TCP client as text only ("remote error:
	// tls: ..."); with TLS 1.3 a refused client certificate shows on the
	// first read, after the handshake.
	msg := err.Error()
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w (give the CA that signed the server's certificate with --ca)", err)
	case errors.As(err, &hostErr):
		return fmt.Errorf("%w (name the certificate's host with --server-name)", err)
	case strings.Contains(msg, "remote error: tls: handshake failure"), strings.Contains(msg, "remote error: tls: insufficient security"),
		strings.Contains(msg, "tls: no cipher suite supported"), strings.Contains(msg, "tls: protocol version not supported"):
		return fmt.Errorf("%w (no TLS version or suite in common: a server such as PyKMIP's needs --tls-legacy-ciphers)", err)
	case strings.Contains(msg, "remote error: tls: unknown certificate authority"), strings.Contains(msg, "remote error: tls: bad certificate"),
		strings.Contains(msg, "remote error: tls: certificate required"), strings.Contains(msg, "remote error: tls: certificate unknown"),
		strings.Contains(msg, "remote error: tls: unsupported certificate"):
		return fmt.Errorf("%w (the server refused the client certificate: check --cert, --key and the CA the server trusts)", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w (nothing answered in time)", err)
	}
	return err
}
