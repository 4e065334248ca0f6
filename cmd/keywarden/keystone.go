package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keywarden/keywarden/barbican"
	"github.com/keywarden/keywarden/kms/keystone"
)

// A service token with the service role lets an expired user token through.
var _ barbican.ExpiredAuthenticator = (*keystone.Validator)(nil)

// keystoneConfig is auth.keystone, shaped like keystonemiddleware's
// [keystone_authtoken]; an empty auth_url leaves Keystone off.
type keystoneConfig struct {
	AuthURL           string `yaml:"auth_url"`
	Username          string `yaml:"username"`
	PasswordFile      string `yaml:"password_file"` // 0600, refused otherwise
	ProjectName       string `yaml:"project_name"`
	UserDomainName    string `yaml:"user_domain_name"`
	ProjectDomainName string `yaml:"project_domain_name"`
	CacheSeconds      int    `yaml:"cache_seconds"` // 0: no cache
	// RevocationPoll is how often revocation events are fetched: the
	// longest a revoked token still works (default 2 s).
	RevocationPoll time.Duration `yaml:"revocation_poll"`
}

func (k *keystoneConfig) enabled() bool { return k.AuthURL != "" }

// check validates the values without reading the password file (serve
// reads it, so that a config check needs no secret).
func (k *keystoneConfig) check() error {
	if !k.enabled() {
		return nil
	}
	if k.Username == "" || k.PasswordFile == "" || k.ProjectName == "" {
		return errors.New("config: auth.keystone: username, password_file and project_name are required with auth_url")
	}
	if k.CacheSeconds < 0 {
		return fmt.Errorf("config: auth.keystone.cache_seconds must not be negative, got %d", k.CacheSeconds)
	}
	if k.RevocationPoll < 0 || (k.RevocationPoll > 0 && k.RevocationPoll < 100*time.Millisecond) {
		return fmt.Errorf("config: auth.keystone.revocation_poll must be at least 100ms (0: the default %s), got %s",
			keystone.DefaultPollEvery, k.RevocationPoll)
	}
	return nil
}

// validator builds the Keystone token validator (nil when off).
func (k *keystoneConfig) validator(log *slog.Logger) (*keystone.Validator, error) {
	if !k.enabled() {
		return nil, nil
	}
	pw, err := keystone.ReadPasswordFile(k.PasswordFile)
	if err != nil {
		return nil, err
	}
	return keystone.New(keystone.Config{
		AuthURL: k.AuthURL, Username: k.Username, Password: pw, ProjectName: k.ProjectName,
		UserDomainName: k.UserDomainName, ProjectDomainName: k.ProjectDomainName,
		CacheTime: time.Duration(k.CacheSeconds) * time.Second, PollEvery: k.RevocationPoll, Logger: log,
	})
}
