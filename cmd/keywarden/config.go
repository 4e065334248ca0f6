package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/store/etcd"
	"gopkg.in/yaml.v3"
)

// config is the server configuration: embedded defaults, then the --config
// file (unknown keys are errors), then flags.
type config struct {
	DataDir string `yaml:"data_dir"`
	REST    struct {
		Addr     string `yaml:"addr"`
		HostHref string `yaml:"host_href"`
		MaxBody  int64  `yaml:"max_body"`
		TLSCert  string `yaml:"tls_cert"`
		TLSKey   string `yaml:"tls_key"`
		// LegacyCipherSuites adds TLS 1.2 suites without forward secrecy
		// or with CBC for old clients.
		LegacyCipherSuites bool `yaml:"legacy_cipher_suites"`
	} `yaml:"rest"`
	Auth struct {
		// InsecureNoAuth is the --insecure-noauth flag only: never read
		// from a file (see retiredAuthKeys).
		InsecureNoAuth bool           `yaml:"-"`
		JWT            jwtConfig      `yaml:"jwt"`
		Keystone       keystoneConfig `yaml:"keystone"`
	} `yaml:"auth"`
	KMIP  kmipOptions `yaml:"kmip"`
	Store struct {
		Backend string `yaml:"backend"` // bolt (default) or etcd
		Path    string `yaml:"path"`    // bolt file, default <data>/keywarden.db
		// MapBudget bounds the bolt file's pages in RSS, in bytes
		// (kms/store/bolt trim.go): 0 (the default) or -1, no trimming.
		MapBudget int64 `yaml:"map_budget"`
		Etcd      struct {
			Endpoints []string `yaml:"endpoints"`
			Prefix    string   `yaml:"prefix"`
			Username  string   `yaml:"username"`
			Password  string   `yaml:"password"`
			// TLS: CA of the servers, client certificate and key,
			// the name to verify; https:// endpoints.
			CAFile     string `yaml:"ca_file"`
			CertFile   string `yaml:"cert_file"`
			KeyFile    string `yaml:"key_file"`
			ServerName string `yaml:"server_name"`
			// AllowInsecureHTTP lets http:// reach a non-loopback host.
			AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
		} `yaml:"etcd"`
	} `yaml:"store"`
	Audit     auditConfig `yaml:"audit"`
	RootKey   string      `yaml:"root_key"` // default <data>/root.key
	MasterKey struct {
		Type    string               `yaml:"type"` // local (root_key, default) or transit
		Transit crypto.TransitConfig `yaml:"transit"`
	} `yaml:"master_key"`
	MaxPayload int `yaml:"max_payload"`
	Lists      struct {
		// NameColumnBytes bounds the in-memory name columns of name=
		// lists (bolt only): 0 the default, negative off.
		NameColumnBytes int64 `yaml:"name_column_bytes"`
	} `yaml:"lists"`
	Passphrase struct {
		Length   int    `yaml:"length"`
		Alphabet string `yaml:"alphabet"`
	} `yaml:"passphrase"`
	// Quotas are every project's defaults (secrets, orders, consumers, and
	// containers, cas as Barbican shows them); absent or -1: unlimited.
	Quotas  kms.Quotas `yaml:"quotas"`
	Metrics struct {
		Addr string `yaml:"addr"` // Prometheus /metrics listener; empty: off
	} `yaml:"metrics"`
	Orphans struct {
		CollectEvery time.Duration `yaml:"collect_every"` // 0: the server never collects
		Grace        time.Duration `yaml:"grace"`
		OlderThan    time.Duration `yaml:"older_than"`
		// MinAge is the floor below which no rule (query, CLI, schedule)
		// may count a secret as orphaned.
		MinAge time.Duration `yaml:"min_age"`
	} `yaml:"orphans"`
	// Policy overrides rows of the authorization table by rule name
	// (docs/POLICY.md).
	Policy   map[string]string `yaml:"policy"`
	LogLevel string            `yaml:"log_level"`
}

func defaultConfig() config {
	var c config
	c.DataDir = defaultDataDir()
	c.REST.Addr = "127.0.0.1:9311"
	c.REST.MaxBody = 1 << 20
	c.KMIP = defaultKMIPOptions()
	c.Audit = defaultAuditConfig()
	c.Auth.JWT = defaultJWTConfig()
	c.Orphans.Grace = time.Hour
	c.Auth.Keystone.CacheSeconds = 300 // keystonemiddleware's token_cache_time
	c.Orphans.MinAge = kms.DefaultOrphanMinAge
	c.LogLevel = "info"
	return c
}

// load reads a YAML config file over c; an unknown key names itself.
func (c *config) load(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := checkRetiredKeys(path, b); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// finish fills paths derived from the data dir and checks the values.
func (c *config) finish() error {
	if c.DataDir == "" {
		return errors.New("config: data_dir is empty")
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("config: data_dir: %w", err)
	}
	c.DataDir = abs
	if c.Store.Path == "" {
		c.Store.Path = filepath.Join(c.DataDir, "keywarden.db")
	}
	if c.Store.MapBudget < -1 {
		return fmt.Errorf("config: store.map_budget must be 0 (no trimming, the default; -1 too) or a byte count, got %d", c.Store.MapBudget)
	}
	switch c.Store.Backend {
	case "", "bolt":
		c.Store.Backend = "bolt"
	case "etcd":
		e := c.Store.Etcd
		if len(e.Endpoints) == 0 {
			return errors.New("config: store.etcd.endpoints is empty")
		}
		if err := etcd.CheckEndpoints(e.Endpoints, !c.etcdTLS().Empty(), e.AllowInsecureHTTP); err != nil {
			return fmt.Errorf("config: store.%w", err)
		}
		if (e.CertFile == "") != (e.KeyFile == "") {
			return errors.New("config: store.etcd.cert_file and key_file go together")
		}
	default:
		return fmt.Errorf("config: store.backend %q: use bolt or etcd", c.Store.Backend)
	}
	if c.RootKey == "" {
		c.RootKey = filepath.Join(c.DataDir, "root.key")
	}
	if err := c.Audit.finish(c.DataDir); err != nil {
		return err
	}
	if err := c.Auth.JWT.finish(c.DataDir); err != nil {
		return err
	}
	if err := c.checkNoAuthListeners(); err != nil {
		return err
	}
	if c.REST.MaxBody <= 0 {
		return fmt.Errorf("config: rest.max_body must be positive, got %d", c.REST.MaxBody)
	}
	if (c.REST.TLSCert == "") != (c.REST.TLSKey == "") {
		return errors.New("config: rest.tls_cert and rest.tls_key go together")
	}
	if err := c.KMIP.check(); err != nil {
		return err
	}
	if c.MaxPayload < 0 {
		return fmt.Errorf("config: max_payload must not be negative, got %d", c.MaxPayload)
	}
	if c.Passphrase.Length != 0 || c.Passphrase.Alphabet != "" {
		p := c.passphrasePolicy()
		if err := p.Validate(); err != nil {
			return fmt.Errorf("config: passphrase: %w", err)
		}
	}
	if err := c.Auth.Keystone.check(); err != nil {
		return err
	}
	if o := c.Orphans; o.CollectEvery < 0 || o.Grace < 0 || o.OlderThan < 0 || o.MinAge < 0 {
		return errors.New("config: orphans: collect_every, grace, older_than and min_age must not be negative")
	}
	if o := c.Orphans; o.CollectEvery > 0 && max(o.Grace, o.OlderThan) < minAgeDefault(o.MinAge) {
		return fmt.Errorf("config: orphans: grace %s and older_than %s are below min_age %s: the schedule could never run",
			o.Grace, o.OlderThan, minAgeDefault(o.MinAge))
	}
	if _, err := kms.NewPolicy(c.Policy); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	switch c.MasterKey.Type {
	case "", "local":
		c.MasterKey.Type = "local"
	case "transit":
		if err := c.MasterKey.Transit.Validate(); err != nil {
			return fmt.Errorf("config: master_key.transit: %w", err)
		}
	default:
		return fmt.Errorf("config: master_key.type %q: use local or transit", c.MasterKey.Type)
	}
	if err := c.Quotas.Validate(); err != nil {
		return fmt.Errorf("config: quotas: %w", err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level %q: use debug, info, warn or error", c.LogLevel)
	}
	return nil
}

func (c *config) etcdTLS() etcd.TLSFiles {
	e := c.Store.Etcd
	return etcd.TLSFiles{CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile, ServerName: e.ServerName}
}

func (c *config) passphrasePolicy() crypto.PassphrasePolicy {
	p := crypto.DefaultPassphrasePolicy
	if c.Passphrase.Length != 0 {
		p.Length = c.Passphrase.Length
	}
	if c.Passphrase.Alphabet != "" {
		p.Alphabet = c.Passphrase.Alphabet
	}
	return p
}

// minAgeDefault is the floor kms applies when min_age is left at 0.
func minAgeDefault(set time.Duration) time.Duration {
	if set > 0 {
		return set
	}
	return kms.DefaultOrphanMinAge
}
