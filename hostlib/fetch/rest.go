package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/hostlib"
)

// RESTConfig is the host's access to the Barbican v1 API.
type RESTConfig struct {
	Endpoint  string `json:"endpoint"`             // e.g. https://kms.example:9311
	Token     string `json:"token,omitempty"`      // X-Auth-Token value
	TokenFile string `json:"token_file,omitempty"` // re-read on every fetch, so rotation needs no restart
	ProjectID string `json:"project_id,omitempty"` // X-Project-Id, for no-auth development servers only
	CAFile    string `json:"ca_file,omitempty"`    // PEM bundle trusted for https
	// AllowInsecureHTTP permits http:// to a non-loopback host, which sends
	// the token and the secret in clear over the network.
	AllowInsecureHTTP bool `json:"allow_insecure_http,omitempty"`
}

// REST fetches secrets over the Barbican v1 API. One attempt per call;
// Client adds retries.
type REST struct {
	cfg  RESTConfig
	base string
	http *http.Client
}

// maxPayload is above Barbican's 20000-byte payload limit; anything larger
// is not a disk secret.
const maxPayload = 64 << 10

// NewREST validates cfg and prepares the HTTP client.
func NewREST(cfg RESTConfig) (*REST, error) {
	u, err := url.Parse(strings.TrimSuffix(cfg.Endpoint, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rest endpoint %q: want http(s)://host:port", cfg.Endpoint)
	}
	if u.Scheme == "http" && !cfg.AllowInsecureHTTP && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("rest endpoint %q: plain http to a remote host exposes the token and secrets; use https or allow_insecure_http", cfg.Endpoint)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &REST{cfg: cfg, base: u.String(), http: &http.Client{
		Transport: tr,
		// X-Auth-Token is not a header Go strips on redirect: follow none.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secretMeta is the part of GET /v1/secrets/{id} the host needs.
type secretMeta struct {
	SecretType   string            `json:"secret_type"`
	Algorithm    string            `json:"algorithm"`
	BitLength    int               `json:"bit_length"`
	Status       string            `json:"status"`
	ContentTypes map[string]string `json:"content_types"`
}

// Get fetches one secret's metadata, checks its type, then its payload.
func (r *REST) Get(ctx context.Context, id string) (*hostlib.Secret, error) {
	var meta secretMeta
	resp, err := r.do(ctx, id, "", "application/json")
	if err != nil {
		return nil, err
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta)
	resp.Body.Close()
	if err != nil {
		return nil, transient(fmt.Errorf("secret %s metadata: %w", id, err), 0)
	}
	s := &hostlib.Secret{ID: id, Type: meta.SecretType}
	if err := s.Usable(); err != nil {
		return nil, err
	}
	accept := meta.ContentTypes["default"]
	if accept == "" {
		return nil, fmt.Errorf("%w: secret %s has no payload", hostlib.ErrNotFound, id)
	}
	resp, err = r.do(ctx, id, "/payload", accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	material, err := readSecret(resp.Body, resp.ContentLength)
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("secret %s: %w", id, err)
	}
	if err != nil {
		return nil, transient(fmt.Errorf("secret %s payload: %w", id, err), 0)
	}
	s = hostlib.NewSecret(id, meta.SecretType, material)
	s.Algorithm, s.BitLength = meta.Algorithm, meta.BitLength
	return s, nil
}

// Record reads GET /v1/secrets/{id}/lifecycle's "encryption": how the
// disk using the secret is encrypted, or nil when nothing is recorded.
func (r *REST) Record(ctx context.Context, id string) (*hostlib.DiskRecord, error) {
	resp, err := r.do(ctx, id, "/lifecycle", "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Encryption *hostlib.DiskRecord `json:"encryption"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return nil, transient(fmt.Errorf("secret %s lifecycle: %w", id, err), 0)
	}
	return body.Encryption, nil
}

// do sends one authenticated GET and turns any non-200 answer into an error.
func (r *REST) do(ctx context.Context, id, suffix, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/v1/secrets/"+url.PathEscape(id)+suffix, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	tok, err := r.token()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	if r.cfg.ProjectID != "" {
		req.Header.Set("X-Project-Id", r.cfg.ProjectID)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, transient(fmt.Errorf("GET secret %s%s: %w", id, suffix, err), 0)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, statusError(resp, id)
}

func (r *REST) token() (string, error) {
	if r.cfg.TokenFile == "" {
		return r.cfg.Token, nil
	}
	b, err := os.ReadFile(r.cfg.TokenFile)
	if err != nil {
		return "", fmt.Errorf("token_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// statusError maps Barbican's answer; the body's description is safe to
// show (it never holds secret material).
func statusError(resp *http.Response, id string) error {
	var body struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body)
	msg := fmt.Sprintf("secret %s: HTTP %d", id, resp.StatusCode)
	if body.Description != "" {
		msg += ": " + body.Description
	}
	switch c := resp.StatusCode; {
	case c == http.StatusNotFound:
		return fmt.Errorf("%w: %s", hostlib.ErrNotFound, msg)
	case c == http.StatusForbidden:
		return fmt.Errorf("%w: %s", hostlib.ErrForbidden, msg)
	case c == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", hostlib.ErrUnauthorized, msg)
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		return transient(errors.New(msg), retryAfter(resp.Header.Get("Retry-After")))
	}
	return errors.New(msg)
}

func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
