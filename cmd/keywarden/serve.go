package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/keywarden/keywarden/barbican"
	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kmip"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/audit"
	"github.com/keywarden/keywarden/kms/store"
	"github.com/keywarden/keywarden/kms/store/bolt"
	"github.com/keywarden/keywarden/kms/store/etcd"
	"github.com/keywarden/keywarden/kms/token"
	"github.com/spf13/cobra"
)

// serverFlags are the flags deployment tools and tests rely on; each
// overrides the config file only when given.
type serverFlags struct {
	configFile, dataDir, restAddr, kmipAddr, metricsAddr, logLevel string
	noAuth                                                         bool
}

func (f *serverFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.configFile, "config", "", "YAML config file (see deploy/keywarden.yaml)")
	fl.StringVar(&f.dataDir, "data-dir", defaultDataDir(), "directory for the store, root key, token key and PKI")
	fl.StringVar(&f.restAddr, "rest-addr", "127.0.0.1:9311", "Barbican REST listen address")
	fl.StringVar(&f.kmipAddr, "kmip-addr", "127.0.0.1:5696", "KMIP listen address (empty: KMIP off)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "Prometheus /metrics listen address, e.g. 127.0.0.1:9312 (empty: off)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.BoolVar(&f.noAuth, "insecure-noauth", false, "DEVELOPMENT ONLY: trust X-Project-Id/X-Roles headers instead of tokens")
}

// resolve builds the config: defaults, then file, then the flags given.
func (f *serverFlags) resolve(cmd *cobra.Command) (config, error) {
	c := defaultConfig()
	if f.configFile != "" {
		if err := c.load(f.configFile); err != nil {
			return c, err
		}
	}
	fl := cmd.Flags()
	if fl.Changed("data-dir") {
		c.DataDir = f.dataDir
	}
	if fl.Changed("rest-addr") {
		c.REST.Addr = f.restAddr
	}
	if fl.Changed("kmip-addr") {
		c.KMIP.Addr = f.kmipAddr
	}
	if fl.Changed("metrics-addr") {
		c.Metrics.Addr = f.metricsAddr
	}
	if fl.Changed("log-level") {
		c.LogLevel = f.logLevel
	}
	if fl.Changed("insecure-noauth") {
		c.Auth.InsecureNoAuth = f.noAuth
	}
	return c, c.finish()
}

var serveFlags serverFlags

var serveCmd = &cobra.Command{
	Use:   "serve",
	Short: "Run the key manager (REST on 127.0.0.1:9311, KMIP on 127.0.0.1:5696)",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		cfg, err := serveFlags.resolve(cmd)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return serve(ctx, cfg)
	},
}

func init() {
	serveFlags.register(serveCmd)
	rootCmd.AddCommand(serveCmd)
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// state is what serve and init open in the data dir.
type state struct {
	store   store.Store
	master  crypto.MasterKey
	svc     *kms.Service
	tokenKy []byte
	audit   *audit.Log
}

func (s *state) close() {
	// The store first: its last checkpoint has the audit log sync the
	// records it journaled, and it may then drop its WAL.
	if s.store != nil {
		s.store.Close()
	}
	if s.audit != nil {
		s.audit.Close()
	}
	if c, ok := s.master.(interface{ Close() }); ok {
		c.Close() // the local root key zeroes itself
	}
	crypto.Zero(s.tokenKy)
}

// openState creates on first use and opens the data dir's contents.
func openState(cfg config, log *slog.Logger) (*state, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	st := &state{}
	master, err := openMaster(cfg, log)
	if err != nil {
		return nil, err
	}
	st.master = master
	st.store, err = openStore(cfg, log)
	if err != nil {
		st.close()
		return nil, err
	}
	if foreign, err := kms.ForeignKEKs(context.Background(), st.store, master); err != nil || len(foreign) > 0 {
		st.close()
		if err == nil {
			err = fmt.Errorf("project keys wrapped by another master key than %s: %v; finish `keywarden rotate-root-key` "+
				"or `keywarden migrate-master-key`, or configure that master key", master.ID(), foreign)
		}
		return nil, err
	}
	if cfg.devTokensOn() {
		var created bool
		st.tokenKy, created, err = loadOrCreateSecretFile(cfg.Auth.JWT.HMACSecretFile)
		if err != nil {
			st.close()
			return nil, err
		}
		if created {
			log.Info("created development token key", "path", cfg.Auth.JWT.HMACSecretFile)
		}
	}
	if st.audit, err = audit.Open(cfg.Audit.Path, cfg.Audit.options(log)); err != nil {
		st.close()
		return nil, err
	}
	st.svc, err = kms.New(kms.Config{
		Store: st.store, Master: master, MaxPayload: cfg.MaxPayload, Passphrase: cfg.passphrasePolicy(),
		Audit: st.audit, Quotas: cfg.Quotas, Policy: cfg.Policy, OrphanMinAge: cfg.Orphans.MinAge,
		NameColumnBytes: cfg.Lists.NameColumnBytes,
	})
	if err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

func serve(ctx context.Context, cfg config) error {
	log := newLogger(cfg.LogLevel)
	if t := tuneRuntime(); t != "" {
		log.Info("runtime tuned", "settings", t)
	}
	if err := harden(); err != nil {
		log.Warn("could not disable core dumps", "err", err)
	}
	if path := os.Getenv("KEYWARDEN_CPUPROFILE"); path != "" {
		// Used by `keywarden bench --server-cpuprofile`.
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
		if os.Getenv("KEYWARDEN_CPUPROFILE_ON_SIGNAL") == "" {
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		} else {
			// --server-cpuprofile-op: the bench signals the start of the
			// operation it wants profiled.
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGUSR1)
			go func() {
				<-sig
				signal.Stop(sig)
				pprof.StartCPUProfile(f)
			}()
		}
	}
	st, err := openState(cfg, log)
	if err != nil {
		return err
	}
	defer st.close()

	auth, closeAuth, err := authenticator(cfg, st, log)
	if err != nil {
		return err
	}
	defer closeAuth()
	var (
		observeREST func(string, string, int, time.Duration)
		m           *metrics
		metricsAddr = "off"
	)
	if cfg.Metrics.Addr != "" {
		m = newMetrics()
		msrv, addr, err := m.serve(cfg.Metrics.Addr, log)
		if err != nil {
			return err
		}
		defer msrv.Close()
		observeREST, metricsAddr = m.observeREST, "http://"+addr+"/metrics"
	}
	api, err := barbican.New(barbican.Config{
		Service: st.svc, Auth: auth, NoAuth: cfg.Auth.InsecureNoAuth,
		HostHref: cfg.REST.HostHref, MaxBody: cfg.REST.MaxBody, Logger: log, Observe: observeREST,
		OrphanRule: consumers.OrphanRule{Grace: cfg.Orphans.Grace, OlderThan: cfg.Orphans.OlderThan},
	})
	if err != nil {
		return err
	}
	// KMIP first: its handler is also served on the REST listener
	// (KMIP over HTTPS, kmip.HTTPPath).
	kmipShutdown := func(context.Context) error { return nil }
	kmipAddr := "off"
	var handler http.Handler = api
	restTLS := crypto.ServerTLS(cfg.REST.LegacyCipherSuites)
	if cfg.KMIP.Addr != "" {
		var ksrv *kmip.Server
		kmipAddr, ksrv, err = startKMIP(ctx, st.svc, cfg.DataDir, cfg.KMIP, m, log)
		if err != nil {
			return fmt.Errorf("kmip: %w", err)
		}
		kmipShutdown = ksrv.Shutdown
		mux := http.NewServeMux()
		mux.Handle(kmip.HTTPPath, ksrv.HTTPHandler())
		mux.Handle("/", api)
		handler = mux
		// Ask for a client certificate; only the KMIP path needs one and
		// verifies it (a Barbican client without one is unaffected).
		restTLS.ClientAuth = tls.RequestClientCert
	}
	ln, err := net.Listen("tcp", cfg.REST.Addr)
	if err != nil {
		kmipShutdown(context.Background())
		return fmt.Errorf("rest: %w", err)
	}
	srv := &http.Server{
		TLSConfig: restTLS,
		Handler:   handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	restErr := make(chan error, 1)
	go func() {
		if cfg.REST.TLSCert != "" {
			restErr <- srv.ServeTLS(ln, cfg.REST.TLSCert, cfg.REST.TLSKey)
		} else {
			restErr <- srv.Serve(ln)
		}
	}()
	if cfg.REST.TLSCert != "" {
		scheme = "https"
	}

	log.Info("keywarden started", "version", version, "rest", scheme+"://"+ln.Addr().String(),
		"kmip", kmipAddr, "metrics", metricsAddr, "data_dir", cfg.DataDir, "store", storeDesc(cfg), "master_key", st.master.ID(), "audit", cfg.Audit.Path)
	if cfg.KMIP.Addr != "" {
		log.Info("kmip: also served over HTTPS (TTLV, XML, JSON), same client certificates",
			"url", scheme+"://"+ln.Addr().String()+kmip.HTTPPath, "needs", "rest.tls_cert (plain HTTP is refused there)")
	}
	if cfg.Auth.InsecureNoAuth {
		log.Warn("INSECURE: --insecure-noauth is on; any caller can act as any project via X-Project-Id")
	} else if len(st.tokenKy) > 0 {
		hint := "keywarden token --data-dir " + cfg.DataDir + " --project P --user U"
		if j := cfg.Auth.JWT; j.Issuer != "" || j.Audience != "" {
			hint += fmt.Sprintf(" --issuer %q --audience %q", j.mintIssuer(), j.Audience)
		}
		log.Info("tokens: mint a development token with `"+hint+"`", "max_lifetime", cfg.Auth.JWT.MaxLifetime)
	}

	if every := cfg.Orphans.CollectEvery; every > 0 {
		rule := consumers.OrphanRule{Grace: cfg.Orphans.Grace, OlderThan: cfg.Orphans.OlderThan}
		go collectOrphansEvery(ctx, st.svc, rule, every, log)
		log.Info("orphans: collected on a schedule", "every", every, "grace", rule.Grace, "older_than", rule.OlderThan)
	}

	select {
	case <-ctx.Done():
	case err := <-restErr:
		kmipShutdown(context.Background())
		return fmt.Errorf("rest: %w", err)
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(sctx), kmipShutdown(sctx))
	log.Info("stopped")
	return err
}

// authenticator is what checks bearer tokens: Keywarden's JWTs (HMAC or
// public keys), Keystone, or both, each token by its form. nil when
// neither is configured (no-auth development mode).
func authenticator(cfg config, st *state, log *slog.Logger) (barbican.Authenticator, func(), error) {
	var tokens barbican.Tokens
	if j := cfg.Auth.JWT; len(st.tokenKy) > 0 || len(j.PublicKeys) > 0 {
		v, err := token.NewVerifier(token.Config{
			HMACSecret: st.tokenKy, PublicKeyFiles: j.PublicKeys, Issuer: j.Issuer, Audience: j.Audience,
			MaxLifetime: j.MaxLifetime, Leeway: 30 * time.Second,
		})
		if err != nil {
			return nil, nil, err
		}
		tokens.JWT = v
	}
	closeAuth := func() {}
	ks, err := cfg.Auth.Keystone.validator(log)
	if err != nil {
		return nil, nil, err
	}
	if ks != nil {
		tokens.Keystone, closeAuth = ks, ks.Close
		log.Info("tokens: Keystone tokens validated", "auth_url", cfg.Auth.Keystone.AuthURL,
			"user", cfg.Auth.Keystone.Username, "cache_seconds", cfg.Auth.Keystone.CacheSeconds)
	}
	if tokens.JWT == nil && tokens.Keystone == nil {
		return nil, closeAuth, nil
	}
	return tokens, closeAuth, nil
}

func storeDesc(cfg config) string {
	if cfg.Store.Backend == "etcd" {
		return "etcd " + strings.Join(cfg.Store.Etcd.Endpoints, ",") + " prefix " + cfg.Store.Etcd.Prefix
	}
	return cfg.Store.Path
}

func openStore(cfg config, log *slog.Logger) (store.Store, error) {
	if cfg.Store.Backend == "etcd" {
		e := cfg.Store.Etcd
		tlsCfg, err := cfg.etcdTLS().Config()
		if err != nil {
			return nil, err
		}
		st, err := etcd.Open(etcd.Config{Endpoints: e.Endpoints, Prefix: e.Prefix, Username: e.Username, Password: e.Password,
			TLS: tlsCfg, AllowInsecureHTTP: e.AllowInsecureHTTP})
		if err != nil {
			return nil, err // not a nil *etcd.Store inside a non-nil interface
		}
		return st, nil
	}
	st, err := bolt.Open(cfg.Store.Path, bolt.Options{Logger: log, MapBudget: cfg.Store.MapBudget}) // it reports a torn WAL tail it cut
	if err != nil {
		return nil, err
	}
	return st, nil
}

// loadOrCreateSecretFile keeps a 32-byte random secret in a 0600 file.
func loadOrCreateSecretFile(path string) ([]byte, bool, error) {
	return crypto.LoadOrCreateKeyFile(path, "token key", 32)
}
