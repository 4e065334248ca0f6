package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/keywarden/keywarden/kms/audit"
)

// auditConfig is the `audit:` section of the config file:
//
//	audit:
//	  path: ""             # default <data_dir>/audit.log; rotated files sit next to it
//	  max_bytes: 268435456 # rotate a file past this size; 0 = never
//	  key_file: ""         # HMAC key of the chain, default <data_dir>/audit.key
type auditConfig struct {
	Path     string `yaml:"path"`
	MaxBytes int64  `yaml:"max_bytes"`
	KeyFile  string `yaml:"key_file"`
}

// defaultAuditConfig sets max_bytes before the file is read, so that an
// explicit 0 there means "never rotate".
func defaultAuditConfig() auditConfig { return auditConfig{MaxBytes: audit.DefaultMaxBytes} }

// finish fills the paths derived from the data dir and checks the values.
func (a *auditConfig) finish(dataDir string) error {
	if a.Path == "" {
		a.Path = filepath.Join(dataDir, "audit.log")
	}
	if a.KeyFile == "" {
		a.KeyFile = filepath.Join(dataDir, "audit.key")
	}
	if a.MaxBytes < 0 {
		return fmt.Errorf("config: audit.max_bytes must not be negative (0 = never rotate), got %d", a.MaxBytes)
	}
	return nil
}

// options are audit.Open's options for this section.
func (a auditConfig) options(log *slog.Logger) audit.Options {
	o := audit.Options{Logger: log, KeyFile: a.KeyFile, MaxBytes: a.MaxBytes}
	if o.MaxBytes == 0 {
		o.MaxBytes = -1 // the config's "never"; audit.Options' zero is the default
	}
	return o
}
