package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keywarden/keywarden/kms/token"
)

// jwtConfig is the `auth.jwt:` section of the config file: which bearer
// tokens the REST API accepts.
//
//	auth:
//	  jwt:
//	    public_keys: []      # PEM RSA/ECDSA keys of the identity provider (RS256/ES256)
//	    issuer: ""           # when set, every token's iss must equal it
//	    audience: ""         # when set, every token's aud must contain it
//	    max_lifetime: 24h    # exp - iat (exp - now without iat) may not exceed it
//	    hmac_secret_file: "" # development HS256 key, default <data_dir>/token.key
//	    allow_hmac: false    # with public_keys set, also accept HS256 tokens
type jwtConfig struct {
	PublicKeys     []string      `yaml:"public_keys"`
	Issuer         string        `yaml:"issuer"`
	Audience       string        `yaml:"audience"`
	MaxLifetime    time.Duration `yaml:"max_lifetime"`
	HMACSecretFile string        `yaml:"hmac_secret_file"`
	AllowHMAC      bool          `yaml:"allow_hmac"`
}

func defaultJWTConfig() jwtConfig { return jwtConfig{MaxLifetime: token.DefaultMaxLifetime} }

// hmacOn says whether the development HS256 key verifies tokens: always
// when no public key is configured (`make run`), else only when allowed
// explicitly, so that a production server does not also trust a key file
// on its disk.
func (j jwtConfig) hmacOn() bool { return len(j.PublicKeys) == 0 || j.AllowHMAC }

// devTokensOn is hmacOn for the whole server: with Keystone configured it
// is a production server too, and the development key is off unless
// allowed explicitly.
func (c *config) devTokensOn() bool {
	return c.Auth.JWT.hmacOn() && (c.Auth.JWT.AllowHMAC || !c.Auth.Keystone.enabled())
}

// mintIssuer is the iss of the tokens this server's own CLI mints: the
// configured issuer, which the server then requires, else the development
// one.
func (j jwtConfig) mintIssuer() string {
	if j.Issuer != "" {
		return j.Issuer
	}
	return token.DevIssuer
}

func (j *jwtConfig) finish(dataDir string) error {
	if j.HMACSecretFile == "" {
		j.HMACSecretFile = filepath.Join(dataDir, "token.key")
	}
	if j.MaxLifetime <= 0 {
		return fmt.Errorf("config: auth.jwt.max_lifetime must be positive, got %s", j.MaxLifetime)
	}
	return nil
}

// retiredAuthKeys are keys of the auth section that are no longer read,
// with what to do instead; a file that still has one is refused with that
// message rather than a bare "field not found".
var retiredAuthKeys = map[string]string{
	"insecure_noauth": "auth.insecure_noauth is no longer read from a config file: development mode " +
		"(no authentication) is only the command-line flag --insecure-noauth, and only with loopback listeners; remove the key",
	"disable_hmac": "auth.disable_hmac was removed: with auth.jwt.public_keys set the development HS256 key " +
		"is off unless auth.jwt.allow_hmac is true; remove the key",
	"hmac_secret_file": "auth.hmac_secret_file moved to auth.jwt.hmac_secret_file",
	"public_keys":      "auth.public_keys moved to auth.jwt.public_keys",
	"issuer":           "auth.issuer moved to auth.jwt.issuer",
	"audience":         "auth.audience moved to auth.jwt.audience",
}

// checkRetiredKeys refuses a config document that sets a retired key.
func checkRetiredKeys(path string, b []byte) error {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
		return nil // the decoder reports what is wrong with the file
	}
	auth := mappingValue(doc.Content[0], "auth")
	if auth == nil || auth.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(auth.Content); i += 2 {
		if msg, ok := retiredAuthKeys[auth.Content[i].Value]; ok {
			return fmt.Errorf("config %s line %d: %s", path, auth.Content[i].Line, msg)
		}
	}
	return nil
}

// mappingValue is the value of key in the mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// checkNoAuthListeners refuses --insecure-noauth when any listener is
// reachable from another host: without authentication every caller is any
// project with any role.
func (c *config) checkNoAuthListeners() error {
	if !c.Auth.InsecureNoAuth {
		return nil
	}
	for _, l := range []struct {
		name, addr string
		off        bool // an empty address turns this listener off
	}{
		{"REST (rest.addr, --rest-addr)", c.REST.Addr, false},
		{"KMIP (kmip.addr, --kmip-addr)", c.KMIP.Addr, true},
		{"metrics (metrics.addr, --metrics-addr)", c.Metrics.Addr, true},
	} {
		if l.addr == "" && l.off {
			continue
		}
		if !isLoopback(l.addr) {
			return fmt.Errorf("--insecure-noauth is refused with a non-loopback listener: %s is %q; "+
				"without authentication any caller is any project, so bind every listener to 127.0.0.1, ::1 or localhost",
				l.name, l.addr)
		}
	}
	return nil
}

// isLoopback reports whether the listen address addr (host:port) binds
// only the loopback interface: 127.0.0.0/8, ::1 or localhost. An empty
// host, 0.0.0.0 and :: bind every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
