package crypto

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// TransitConfig selects a Vault (or OpenBao) Transit key as the master key.
// The key must be a non-derived AEAD key (aes256-gcm96, the Transit default,
// or chacha20-poly1305): the KEK's AAD is sent as Transit associated_data,
// which other key types reject.
type TransitConfig struct {
	Address string `yaml:"address"` // https://host:8200; http:// only to a loopback address; unix:///path
	// TokenFile holds the token. It is re-read on every call, so a token
	// rotated by a Vault Agent sink is picked up without a restart. The file
	// must not be accessible by "other".
	TokenFile string        `yaml:"token_file"`
	Token     string        `yaml:"token"`     // inline alternative to TokenFile
	Namespace string        `yaml:"namespace"` // optional (Vault Enterprise / OpenBao namespaces)
	Mount     string        `yaml:"mount"`     // default "transit"
	Key       string        `yaml:"key"`       // Transit key name
	CAFile    string        `yaml:"ca_file"`   // PEM bundle to verify the server; default system roots
	Timeout   time.Duration `yaml:"timeout"`   // per Wrap/Unwrap, retries included; default 5s
}

// String keeps the token out of logs and %v output.
func (c TransitConfig) String() string {
	tok := ""
	if c.Token != "" {
		tok = "[redacted]"
	}
	return fmt.Sprintf("{Address:%s TokenFile:%s Token:%s Namespace:%s Mount:%s Key:%s CAFile:%s Timeout:%s}",
		c.Address, c.TokenFile, tok, c.Namespace, c.Mount, c.Key, c.CAFile, c.Timeout)
}

// GoString does the same for %#v.
func (c TransitConfig) GoString() string { return "crypto.TransitConfig" + c.String() }

// TransitKey is a MasterKey held by a Vault Transit engine: the key never
// leaves the server; Wrap and Unwrap are transit/encrypt and transit/decrypt.
type TransitKey struct {
	client    *api.Client
	id        string
	addr      string
	encPath   string
	decPath   string
	tokenFile string
	timeout   time.Duration

	mu    sync.Mutex // guards token refresh from tokenFile
	token string
}

var _ MasterKey = (*TransitKey)(nil)

const (
	// A Transit call takes milliseconds; a Vault that has not answered in
	// 5s is down for the caller, who gets a 503 rather than a hang.
	transitDefaultTimeout = 5 * time.Second
	transitMaxRetries     = 4 // on connection errors and 5xx; ~1.5s of backoff in all
	transitMaxResponse    = 1 << 20
)

// Transit names allowed in URL paths: Vault's own key-name charset, so no
// escaping is needed and "..", "?" or "#" cannot change the request path.
var transitName = regexp.MustCompile(`^\w([\w.-]*\w)?$`)

func validTransitPath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if !transitName.MatchString(seg) || strings.Contains(seg, "..") {
			return false
		}
	}
	return true
}

// NewTransitKey checks cfg and builds the client; it makes no request (use
// Check for that), so a server that is briefly down does not stop startup.
// VAULT_* environment variables do not change the address, TLS settings,
// token or namespace.
// withDefaults fills the mount and the timeout.
func (cfg TransitConfig) withDefaults() TransitConfig {
	if cfg.Mount == "" {
		cfg.Mount = "transit"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = transitDefaultTimeout
	}
	return cfg
}

// Validate checks the configuration without touching files or the network
// (config loading uses it; NewTransitKey reads the token and CA files).
func (cfg TransitConfig) Validate() error {
	cfg = cfg.withDefaults()
	if cfg.Timeout < 0 {
		return errors.New("crypto: transit: timeout must be positive")
	}
	if !validTransitPath(cfg.Mount) {
		return fmt.Errorf("crypto: transit: invalid mount %q", cfg.Mount)
	}
	if !transitName.MatchString(cfg.Key) || strings.Contains(cfg.Key, "..") {
		return fmt.Errorf("crypto: transit: invalid key name %q", cfg.Key)
	}
	if cfg.Namespace != "" && !validTransitPath(strings.Trim(cfg.Namespace, "/")) {
		return fmt.Errorf("crypto: transit: invalid namespace %q", cfg.Namespace)
	}
	if (cfg.Token == "") == (cfg.TokenFile == "") {
		return errors.New("crypto: transit: set exactly one of token_file and token")
	}
	if err := checkTransitAddress(cfg.Address); err != nil {
		return err
	}
	id := "transit:" + path.Join(strings.Trim(cfg.Namespace, "/"), cfg.Mount, cfg.Key)
	if len(id) > 255 {
		return fmt.Errorf("crypto: transit: master key ID %q is longer than 255 bytes", id)
	}
	return nil
}

func NewTransitKey(cfg TransitConfig) (*TransitKey, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The namespace is a path prefix in Vault, so it is part of the key's name.
	id := "transit:" + path.Join(strings.Trim(cfg.Namespace, "/"), cfg.Mount, cfg.Key)

	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		var err error
		if tlsConf.RootCAs, err = LoadCAPool(cfg.CAFile, "crypto: transit: CA file"); err != nil {
			return nil, err
		}
	}
	// Our own transport, not api.DefaultConfig's: that one reads VAULT_*
	// variables, and VAULT_SKIP_VERIFY would switch off verification.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	hc := &http.Client{
		Transport: tr,
		// The api client follows Vault's standby redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client, err := api.NewClient(&api.Config{
		Address:      cfg.Address,
		HttpClient:   hc,
		MaxRetries:   transitMaxRetries,
		MinRetryWait: 100 * time.Millisecond,
		MaxRetryWait: time.Second,
		Backoff:      transitBackoff,
		// Timeout stays 0: we bound each call with a context that also
		// covers reading the response body.
	})
	if err != nil {
		return nil, fmt.Errorf("crypto: transit: %w", err)
	}
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	} else {
		client.ClearNamespace() // NewClient may have taken VAULT_NAMESPACE
	}
	t := &TransitKey{
		client:    client,
		id:        id,
		addr:      cfg.Address,
		encPath:   path.Join(cfg.Mount, "encrypt", cfg.Key),
		decPath:   path.Join(cfg.Mount, "decrypt", cfg.Key),
		tokenFile: cfg.TokenFile,
		timeout:   cfg.Timeout,
	}
	client.ClearToken() // NewClient may have taken VAULT_TOKEN
	if cfg.Token != "" {
		t.setToken(strings.TrimSpace(cfg.Token))
	} else if err := t.refreshToken(); err != nil {
		return nil, err
	}
	return t, nil
}

// checkTransitAddress refuses cleartext HTTP to anything but this host: the
// token and unwrapped KEKs cross that connection.
func checkTransitAddress(addr string) error {
	u, err := url.Parse(addr)
	if err != nil || addr == "" {
		return fmt.Errorf("crypto: transit: invalid address %q", addr)
	}
	switch u.Scheme {
	case "https", "unix":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("crypto: transit: address %s: plain http is allowed only to a loopback address; use https", addr)
	}
	return fmt.Errorf("crypto: transit: address %q: want an https://, http://127.0.0.1 or unix:// URL", addr)
}

// transitBackoff is capped exponential backoff with jitter. Unlike the
// library's default it ignores Retry-After, so only ctx bounds a call.
func transitBackoff(lo, hi time.Duration, attempt int, _ *http.Response) time.Duration {
	d := lo << min(attempt, 16)
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + mathrand.N(d/2+1)
}

func (t *TransitKey) setToken(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tok != t.token {
		t.token = tok
		t.client.SetToken(tok)
	}
}

// refreshToken re-reads the token file; errors name the file, never its
// contents.
func (t *TransitKey) refreshToken() error {
	if t.tokenFile == "" {
		return nil
	}
	f, err := os.Open(t.tokenFile)
	if err != nil {
		return fmt.Errorf("crypto: transit: token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("crypto: transit: token file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return fmt.Errorf("crypto: transit: token file %s has mode %#o: it must not be accessible by others (chmod o-rwx %s)", t.tokenFile, perm, t.tokenFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return fmt.Errorf("crypto: transit: token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	Zero(b)
	if tok == "" {
		return fmt.Errorf("crypto: transit: token file %s is empty", t.tokenFile)
	}
	t.setToken(tok)
	return nil
}

// ID is "transit:[<namespace>/]<mount>/<key>". It names the key, not a key
// version: Transit ciphertexts carry their version, so rotating the key in
// Vault needs no re-wrap here. Moving to another key is a master-key rotation.
func (t *TransitKey) ID() string { return t.id }

// Wrap encrypts plaintext with the Transit key; aad goes as associated_data.
// The result is Transit's "vault:vN:..." ciphertext.
func (t *TransitKey) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	// The body is built by hand rather than by encoding/json, whose pooled
	// buffers would keep a copy of the plaintext that we cannot zero.
	body := make([]byte, 0, 48+base64.StdEncoding.EncodedLen(len(plaintext))+base64.StdEncoding.EncodedLen(len(aad)))
	body = append(body, `{"plaintext":"`...)
	body = base64.StdEncoding.AppendEncode(body, plaintext)
	body = appendAAD(body, aad)
	defer Zero(body)

	out, err := t.call(ctx, "encrypt", t.encPath, body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Data struct {
			Ciphertext string `json:"ciphertext"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &r); err != nil || !validTransitCiphertext([]byte(r.Data.Ciphertext)) {
		return nil, fmt.Errorf("crypto: transit encrypt with %s: malformed response", t.id)
	}
	return []byte(r.Data.Ciphertext), nil
}

// Unwrap decrypts what Wrap returned, under any version of the key that
// Vault still keeps, with the same aad.
func (t *TransitKey) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if !validTransitCiphertext(wrapped) {
		return nil, fmt.Errorf("crypto: data is not a Transit ciphertext (master key %s)", t.id)
	}
	body := make([]byte, 0, 48+len(wrapped)+base64.StdEncoding.EncodedLen(len(aad)))
	body = append(body, `{"ciphertext":"`...)
	body = append(body, wrapped...)
	body = appendAAD(body, aad)

	out, err := t.call(ctx, "decrypt", t.decPath, body)
	if err != nil {
		return nil, err
	}
	defer Zero(out)
	var r struct {
		Data struct {
			Plaintext []byte `json:"plaintext"` // base64 in JSON
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Data.Plaintext == nil {
		Zero(r.Data.Plaintext)
		return nil, fmt.Errorf("crypto: transit decrypt with %s: malformed response", t.id)
	}
	return r.Data.Plaintext, nil
}

// Check encrypts and decrypts a random probe, to fail at startup rather than
// at the first new project when the address, token, policy or key type is
// wrong. It needs only the encrypt and decrypt permissions Wrap and Unwrap use.
func (t *TransitKey) Check(ctx context.Context) error {
	probe := make([]byte, keySize)
	rand.Read(probe)
	defer Zero(probe)
	aad := []byte("keywarden/v1/transit-check")
	w, err := t.Wrap(ctx, probe, aad)
	if err != nil {
		return err
	}
	got, err := t.Unwrap(ctx, w, aad)
	if err != nil {
		return err
	}
	defer Zero(got)
	if string(got) != string(probe) {
		return fmt.Errorf("crypto: transit key %s returned a different plaintext", t.id)
	}
	return nil
}

// appendAAD finishes a request body opened with its first string field.
func appendAAD(body, aad []byte) []byte {
	if len(aad) > 0 { // empty AAD is the same as none in GCM
		body = append(body, `","associated_data":"`...)
		body = base64.StdEncoding.AppendEncode(body, aad)
	}
	return append(body, `"}`...)
}

// validTransitCiphertext accepts "vault:v<digits>:<base64>", which is also
// what makes it safe to splice into a JSON string unescaped.
func validTransitCiphertext(b []byte) bool {
	rest, ok := strings.CutPrefix(string(b), "vault:v")
	ver, data, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ver == "" || data == "" {
		return false
	}
	for _, c := range ver {
		if c < '0' || c > '9' {
			return false
		}
	}
	for _, c := range data {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// call PUTs body to path and returns the response body, which the caller
// zeroes when it holds a plaintext.
func (t *TransitKey) call(ctx context.Context, op, p string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := t.refreshToken(); err != nil {
		return nil, err
	}
	resp, err := t.client.Logical().WriteRawWithContext(ctx, p, body)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, t.opError(op, err)
	}
	out, err := readAllZeroing(resp.Body, transitMaxResponse)
	if err != nil {
		return nil, t.opError(op, err)
	}
	return out, nil
}

// opError keeps Vault's messages short. Neither the request body nor the
// token ever reaches an error: Vault's errors echo neither.
func (t *TransitKey) opError(op string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		if len(msg) > 300 { // an HTML page from a proxy, say
			msg = msg[:300] + "..."
		}
		if re.StatusCode >= 500 { // 503 when sealed or in standby without a leader
			return fmt.Errorf("crypto: transit %s with %s at %s: HTTP %d: %s: %w", op, t.id, t.addr, re.StatusCode, msg, ErrMasterUnavailable)
		}
		if re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden {
			// An expired, revoked or under-privileged token is the
			// operator's to fix (the token file is re-read on every call),
			// not the client's: the master key is unavailable until then.
			return fmt.Errorf("crypto: transit %s with %s at %s: HTTP %d: %s (token expired, revoked or without the encrypt/decrypt policy): %w",
				op, t.id, t.addr, re.StatusCode, msg, ErrMasterUnavailable)
		}
		return fmt.Errorf("crypto: transit %s with %s at %s: HTTP %d: %s", op, t.id, t.addr, re.StatusCode, msg)
	}
	// No answer: refused, reset, timed out, cut off mid-response.
	return fmt.Errorf("crypto: transit %s with %s at %s: %w: %w", op, t.id, t.addr, err, ErrMasterUnavailable)
}

// readAllZeroing is io.ReadAll that zeroes each buffer it outgrows, so the
// only copy of a plaintext response left is the one the caller zeroes.
func readAllZeroing(r io.Reader, limit int) ([]byte, error) {
	buf := make([]byte, 0, 2048)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				Zero(buf)
				return nil, errors.New("response too large")
			}
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			Zero(buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			Zero(buf)
			return nil, err
		}
	}
}
