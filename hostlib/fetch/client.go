package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/keywarden/keywarden/hostlib"
)

// Config is the host's key-manager access, as kept in its config file.
type Config struct {
	REST *RESTConfig `json:"rest,omitempty"`
	KMIP *KMIPConfig `json:"kmip,omitempty"`
	// Retry tuning; zero fields take DefaultRetry's.
	Attempts int      `json:"attempts,omitempty"`
	Timeout  Duration `json:"timeout,omitempty"`
	Backoff  Duration `json:"backoff,omitempty"`
	MaxWait  Duration `json:"max_backoff,omitempty"`
}

// Duration is a time.Duration written as "10s" in JSON.
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads a JSON config file. It holds credentials, so a file that
// other users can read is refused.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	f, err := os.Open(path)
	if err != nil {
		return cfg, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		return cfg, fmt.Errorf("%s: mode %v lets other users read the host's credentials; chmod 600", path, st.Mode().Perm())
	}
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Client resolves references and fetches with retries.
type Client struct {
	rest  *REST
	kmip  *KMIP
	base  string
	retry Retry
}

// New builds a client for whichever protocols cfg configures.
func New(cfg Config) (*Client, error) {
	c := &Client{retry: Retry{Attempts: cfg.Attempts, Timeout: time.Duration(cfg.Timeout),
		Base: time.Duration(cfg.Backoff), Max: time.Duration(cfg.MaxWait)}}
	var err error
	if cfg.REST != nil && cfg.REST.Endpoint != "" {
		if c.rest, err = NewREST(*cfg.REST); err != nil {
			return nil, err
		}
		c.base = c.rest.base
	}
	if cfg.KMIP != nil && cfg.KMIP.Addr != "" {
		if c.kmip, err = NewKMIP(*cfg.KMIP); err != nil {
			return nil, err
		}
	}
	if c.rest == nil && c.kmip == nil {
		return nil, errors.New("no key manager configured (rest.endpoint or kmip.addr)")
	}
	return c, nil
}

// Close releases connections.
func (c *Client) Close() error {
	if c.kmip != nil {
		return c.kmip.Close()
	}
	return nil
}

// Fetch resolves ref (see ParseRef) and fetches the secret. The caller
// must Close the returned Secret.
func (c *Client) Fetch(ctx context.Context, ref string) (*hostlib.Secret, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	var get func(context.Context, string) (*hostlib.Secret, error)
	switch {
	case r.Proto == ProtoKMIP || (r.Proto == "" && c.rest == nil):
		if c.kmip == nil {
			return nil, fmt.Errorf("%w: %s needs KMIP, which is not configured", hostlib.ErrBadRef, ref)
		}
		get = c.kmip.Get
	default:
		if err := c.restRef(ref, r); err != nil {
			return nil, err
		}
		get = c.rest.Get
	}
	var s *hostlib.Secret
	err = c.retry.do(ctx, func(ctx context.Context) error {
		var err error
		s, err = get(ctx, r.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Record fetches the key manager's record of how the disk using ref is
// encrypted; nil when it has none. Only the REST API keeps such records.
func (c *Client) Record(ctx context.Context, ref string) (*hostlib.DiskRecord, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if r.Proto == ProtoKMIP || (r.Proto == "" && c.rest == nil) {
		return nil, fmt.Errorf("%w: disk records are kept by the REST API; %s is a KMIP reference", hostlib.ErrBadRef, ref)
	}
	if err := c.restRef(ref, r); err != nil {
		return nil, err
	}
	var rec *hostlib.DiskRecord
	err = c.retry.do(ctx, func(ctx context.Context) error {
		var err error
		rec, err = c.rest.Record(ctx, r.ID)
		return err
	})
	return rec, err
}

// restRef checks a reference the REST client may follow.
func (c *Client) restRef(ref string, r Ref) error {
	if c.rest == nil {
		return fmt.Errorf("%w: %s needs the REST API, which is not configured", hostlib.ErrBadRef, ref)
	}
	if r.Base != "" && !sameService(r.Base, c.base) {
		return fmt.Errorf("%w: %s is not on the configured key manager %s; the host's token goes nowhere else", hostlib.ErrBadRef, ref, c.base)
	}
	if !uuidRe.MatchString(r.ID) {
		return fmt.Errorf("%w: REST secret ids are UUIDs, got %q", hostlib.ErrBadRef, r.ID)
	}
	return nil
}
