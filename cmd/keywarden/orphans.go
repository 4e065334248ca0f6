package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/token"
)

// operator is who `secret orphans` says it is to a running server.
var operator = kms.Identity{Project: "keywarden-operator", User: "keywarden-cli", Roles: []string{kms.RoleServiceAdmin}, Source: "local"}

func serverURL(cfg config) string {
	if orphanOpts.url != "" {
		return strings.TrimRight(orphanOpts.url, "/")
	}
	scheme := "http"
	if cfg.REST.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + cfg.REST.Addr
}

// remoteOrphans lists (GET) or destroys (DELETE) orphans through a running
// server's /v1/orphans.
func remoteOrphans(ctx context.Context, cfg config, o orphanOptions, destroy bool) ([]orphanJSON, error) {
	q := url.Values{"grace": {o.grace.String()}}
	if o.olderThan > 0 {
		q.Set("older_than", o.olderThan.String())
	}
	method := http.MethodGet
	if destroy {
		method = http.MethodDelete
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, serverURL(cfg)+"/v1/orphans?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	tok, err := operatorToken(cfg, o.token)
	if err != nil {
		return nil, err
	}
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	// A server in --insecure-noauth mode reads the identity from headers.
	req.Header.Set("X-Project-Id", operator.Project)
	req.Header.Set("X-User-Id", operator.User)
	req.Header.Set("X-Roles", strings.Join(operator.Roles, ","))
	client, err := serverClient(o.caFile)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the server: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the server's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Description string }
		json.Unmarshal(body, &e)
		return nil, fmt.Errorf("server answered %s: %s", resp.Status, e.Description)
	}
	var list struct {
		Orphans []struct {
			SecretRef      string `json:"secret_ref"`
			Project        string `json:"project"`
			Name           string `json:"name"`
			SecretType     string `json:"secret_type"`
			DeletionPolicy string `json:"deletion_policy"`
			Updated        string `json:"updated"`
			Reason         string `json:"reason"`
			Destroyed      bool   `json:"destroyed"`
		} `json:"orphans"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("the server's answer: %w", err)
	}
	rows := make([]orphanJSON, 0, len(list.Orphans))
	for _, r := range list.Orphans {
		updated, _ := time.Parse("2006-01-02T15:04:05.999999", r.Updated)
		rows = append(rows, orphanJSON{ID: path.Base(r.SecretRef), Project: r.Project, Name: r.Name, Type: r.SecretType,
			DeletionPolicy: r.DeletionPolicy, Updated: updated, Reason: r.Reason, Destroyed: r.Destroyed})
	}
	return rows, nil
}

// serverClient trusts caFile's certificates, when given, besides the
// system's (a server on rest.tls_cert from the built-in CA).
func serverClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return http.DefaultClient, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// operatorToken is --token, else a five-minute service-admin token signed
// with the data dir's development token key, else none.
func operatorToken(cfg config, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	j := cfg.Auth.JWT
	if !cfg.devTokensOn() {
		return "", nil
	}
	key, err := crypto.ReadKeyFile(j.HMACSecretFile, "token key", 32)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("%w (or pass --token)", err)
	}
	defer clear(key)
	return token.MintFor(key, operator, 5*time.Minute, j.mintIssuer(), j.Audience)
}

// collectOrphansEvery destroys orphans on a schedule until ctx ends. Each
// secret is re-checked in its own transaction, so servers sharing an etcd
// store may all run it.
func collectOrphansEvery(ctx context.Context, svc *kms.Service, rule consumers.OrphanRule, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		found, ids, err := svc.SweepOrphans(ctx, rule, true)
		if len(found) > 0 {
			log.Info("orphans: collected", "found", len(found), "destroyed", len(ids), "ids", ids)
		}
		if err != nil {
			log.Error("orphans: collection failed", "err", err)
		}
	}
}
