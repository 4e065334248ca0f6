package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/keywarden/keywarden/hostlib"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/fetch"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
	"github.com/spf13/cobra"
)

const defaultConfig = "/etc/keywarden/host.json"

// options are the global flags. There is deliberately no --token flag: a
// token in argv is readable by every user; use token_file or the config.
type options struct {
	stdout, stderr io.Writer

	config                                    string
	endpoint, tokenFile, projectID, caFile    string
	kmipAddr, kmipCert, kmipKey, kmipCA, kmip string
	timeout                                   time.Duration
	attempts                                  int
	cryptsetupBin, qemuImgBin, secretMode     string
	profile                                   string
}

func (o *options) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&o.config, "config", defaultConfig, "host config file (JSON, mode 0600)")
	f.StringVar(&o.endpoint, "endpoint", "", "Keywarden REST endpoint, e.g. https://kms:9311")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the host's X-Auth-Token")
	f.StringVar(&o.projectID, "project-id", "", "X-Project-Id for a no-auth development server")
	f.StringVar(&o.caFile, "ca-file", "", "CA bundle for the REST endpoint")
	f.StringVar(&o.kmipAddr, "kmip-addr", "", "KMIP server host:port")
	f.StringVar(&o.kmipCert, "kmip-cert", "", "host client certificate (PEM) for KMIP")
	f.StringVar(&o.kmipKey, "kmip-key", "", "host client key (PEM) for KMIP")
	f.StringVar(&o.kmipCA, "kmip-ca", "", "CA bundle for the KMIP server")
	f.StringVar(&o.kmip, "kmip-server-name", "", "KMIP server TLS name, if not its address")
	f.DurationVar(&o.timeout, "timeout", 0, "per-attempt key manager timeout (default 10s)")
	f.IntVar(&o.attempts, "attempts", 0, "key manager attempts before giving up (default 4)")
	f.StringVar(&o.cryptsetupBin, "cryptsetup", "", "cryptsetup binary (default: PATH)")
	f.StringVar(&o.qemuImgBin, "qemu-img", "", "qemu-img binary (default: PATH)")
	f.StringVar(&o.secretMode, "secret-fd", "pipe", "how qemu-img gets secrets: pipe or memfd")
}

// fetchConfig merges the config file (if any) with the flags, flags winning.
func (o *options) fetchConfig(cmd *cobra.Command) (fetch.Config, error) {
	var cfg fetch.Config
	loaded, err := fetch.LoadConfig(o.config)
	switch {
	case err == nil:
		cfg = loaded
	case errors.Is(err, fs.ErrNotExist) && !cmd.Flags().Changed("config"):
	default:
		return cfg, usageError{err}
	}
	if o.endpoint != "" || o.tokenFile != "" || o.projectID != "" || o.caFile != "" {
		if cfg.REST == nil {
			cfg.REST = &fetch.RESTConfig{}
		}
		set(&cfg.REST.Endpoint, o.endpoint)
		set(&cfg.REST.TokenFile, o.tokenFile)
		set(&cfg.REST.ProjectID, o.projectID)
		set(&cfg.REST.CAFile, o.caFile)
	}
	if o.kmipAddr != "" || o.kmipCert != "" || o.kmipKey != "" || o.kmipCA != "" || o.kmip != "" {
		if cfg.KMIP == nil {
			cfg.KMIP = &fetch.KMIPConfig{}
		}
		set(&cfg.KMIP.Addr, o.kmipAddr)
		set(&cfg.KMIP.CertFile, o.kmipCert)
		set(&cfg.KMIP.KeyFile, o.kmipKey)
		set(&cfg.KMIP.CAFile, o.kmipCA)
		set(&cfg.KMIP.ServerName, o.kmip)
	}
	if o.timeout > 0 {
		cfg.Timeout = fetch.Duration(o.timeout)
	}
	if o.attempts > 0 {
		cfg.Attempts = o.attempts
	}
	return cfg, nil
}

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// fetchSecret fetches ref with the host's credentials; the caller Closes it.
func (o *options) fetchSecret(cmd *cobra.Command, ref string) (*hostlib.Secret, error) {
	c, err := o.client(cmd, ref)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Fetch(cmd.Context(), ref)
}

// client is a key manager client for ref; the caller Closes it.
func (o *options) client(cmd *cobra.Command, ref string) (*fetch.Client, error) {
	if ref == "" {
		return nil, usageError{errors.New("--ref is required")}
	}
	cfg, err := o.fetchConfig(cmd)
	if err != nil {
		return nil, err
	}
	c, err := fetch.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

func (o *options) host() (*hostlib.Host, error) {
	h := &hostlib.Host{Cryptsetup: cryptsetup.New(o.cryptsetupBin), QemuImg: qemuimg.New(o.qemuImgBin), Profile: o.profile}
	switch o.secretMode {
	case "pipe":
	case "memfd":
		h.QemuImg.Mode = qemuimg.SecretMemfd
	default:
		return nil, usageError{fmt.Errorf("--secret-fd %q: want pipe or memfd", o.secretMode)}
	}
	return h, nil
}

func (o *options) print(v any) error {
	enc := json.NewEncoder(o.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// profileFlag adds --profile to commands that create keyslots.
func (o *options) profileFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.profile, "profile", hostlib.ProfileAuto,
		"PBKDF profile for new keyslots: auto (fast for random keys, defaults for passphrases), fast, default")
}

func (o *options) warn(format string, a ...any) {
	fmt.Fprintf(o.stderr, "keywarden-host: warning: "+format+"\n", a...)
}
