// Package loadgen is the project's load tool behind `keywarden bench`: N
// persistent connections, each issuing requests back to back, with latency
// percentiles per operation, against Keywarden or any Barbican API (REST)
// or KMIP server, optionally beside the machine's own limits (--baseline).
// The client side is a few lines over net.Conn so that the load generator
// does not cost more CPU than the server it measures (both share this
// machine).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Config is one run. Without Target, Run starts a throw-away server (Binary's
// serve command) and drives it.
type Config struct {
	// Target is the server: a Barbican API's base URL (http:// or https://)
	// or, with Protocol "kmip", a KMIP server's host:port. Empty: start one.
	Target   string
	Protocol string // "rest" (default) or "kmip"
	Token    string // X-Auth-Token for Target
	// Project and Roles are X-Project-Id and X-Roles (default admin) for a
	// server without authentication (Barbican's noauth pipeline, Keywarden's
	// --insecure-noauth).
	Project, Roles string
	Ops            []string
	Clients        int
	// InFlight is how many KMIP messages each connection sends ahead of
	// their answers (default 1: one at a time).
	InFlight int
	// Duration is the time per operation.
	Duration time.Duration
	// Keystone sends a Keystone token obtained with the OS_* environment.
	Keystone bool

	// TLS of an https:// target and of KMIP: the CA of the server's
	// certificate (default: the system's), the client certificate and key,
	// the name to verify, and the legacy TLS 1.2 suites (CBC, RSA key
	// exchange) servers such as PyKMIP's need.
	CACert, ClientCert, ClientKey, ServerName string
	LegacyCiphers                             bool

	// ServerPIDs are the target's processes, for its CPU per request.
	ServerPIDs []int

	// Baseline measures the machine's limits first (BaselineDuration each):
	// bare HTTP and HTTPS servers and the disk's sync rate in SyncDir
	// (default: the started server's data dir, else the current one).
	Baseline         bool
	BaselineDuration time.Duration
	SyncDir          string

	// The started server: its binary (default: this executable), data dir
	// (default: temporary, removed), CPU profile and config file.
	Binary, DataDir, CPUProfile, ServerConfig string
	// ServerTLS serves the started server's REST API over TLS (a
	// throw-away certificate the bench trusts), as the bare TLS baseline.
	ServerTLS bool
	// CPUProfileOp, when set, narrows CPUProfile to that operation's
	// measured run (the server starts profiling on SIGUSR1).
	CPUProfileOp string
}

// Bench runs cfg and writes everything: the header, the baseline table
// (with cfg.Baseline), the results table, and each figure beside its limit
// and issue 14's targets.
func Bench(ctx context.Context, cfg Config, out io.Writer) error {
	s, err := prepare(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.stop()
	var b *Baseline
	if cfg.Baseline {
		d := cfg.BaselineDuration
		if d <= 0 {
			d = 3 * time.Second
		}
		dir := cfg.SyncDir
		if dir == "" {
			dir = s.dataDir
		}
		if dir == "" {
			dir = "."
		}
		if b, err = MeasureBaseline(cfg.Binary, cfg.Clients, d, dir); err != nil {
			return err
		}
		if err := b.Write(out); err != nil {
			return err
		}
		fmt.Fprintln(out)
	}
	results, err := s.run(cfg, out)
	if err != nil {
		return err
	}
	if err := WriteTable(out, results); err != nil {
		return err
	}
	writeLimits(out, b, results, s.info)
	return nil
}

// Run drives the target for each of cfg.Ops in turn. It writes the header
// line when it starts and each operation's first error as it ends; the
// results are for WriteTable.
func Run(ctx context.Context, cfg Config, out io.Writer) ([]Result, error) {
	s, err := prepare(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	return s.run(cfg, out)
}

// session is a prepared target: REST or KMIP, started or not.
type session struct {
	stop    func()
	dataDir string // the started server's
	rest    target
	kmip    kmipTarget
	info    runInfo
	label   string // how requests authenticate
	// profileOp is the operation whose measured run the started server
	// (profilePID) profiles: it is signalled as that run starts.
	profileOp  string
	profilePID int
}

// profile starts the started server's CPU profile if op is the one wanted.
func (s *session) profile(op string) {
	if s.profileOp == op && s.profilePID > 0 {
		syscall.Kill(s.profilePID, syscall.SIGUSR1)
		s.profilePID = 0
	}
}

// prepare checks cfg, starts a server when there is no target, and checks
// that the target answers.
func prepare(ctx context.Context, cfg Config) (*session, error) {
	if cfg.Clients < 1 {
		return nil, errors.New("--clients must be at least 1")
	}
	if cfg.InFlight == 0 {
		cfg.InFlight = 1
	}
	if cfg.InFlight < 1 {
		return nil, errors.New("--in-flight must be at least 1")
	}
	s := &session{stop: func() {}, info: runInfo{protocol: cfg.Protocol, clients: cfg.Clients, inflight: cfg.InFlight}}
	switch cfg.Protocol {
	case "", "rest":
		s.info.protocol = "rest"
	case "kmip":
		if cfg.Keystone || cfg.Token != "" || cfg.Project != "" {
			return nil, errors.New("--protocol kmip authenticates with the client certificate (--cert, --key), not --token, --project or --keystone")
		}
	default:
		return nil, fmt.Errorf("--protocol %q: want rest or kmip", cfg.Protocol)
	}
	if cfg.Target == "" {
		stop, st, err := startServer(cfg.Binary, cfg.DataDir, cfg.CPUProfile, cfg.CPUProfileOp != "", cfg.ServerConfig,
			cfg.ServerTLS, s.info.protocol == "kmip")
		if err != nil {
			return nil, err
		}
		if cfg.CPUProfile != "" && cfg.CPUProfileOp != "" {
			s.profileOp, s.profilePID = cfg.CPUProfileOp, st.pid
		}
		s.stop, s.dataDir, s.rest, s.label = stop, st.dataDir, st.rest, "JWT"
		s.info.tls = st.rest.tls != nil
		if s.info.protocol == "kmip" {
			cfg.Target, cfg.ServerPIDs = st.kmipAddr, []int{st.pid}
			cfg.ClientCert = filepath.Join(st.clientDir, "client.pem")
			cfg.ClientKey = filepath.Join(st.clientDir, "client-key.pem")
			cfg.CACert = filepath.Join(st.clientDir, "ca.pem")
		}
		if cfg.Keystone {
			s.rest.headers = ""
		}
	} else if s.info.protocol == "rest" {
		t, err := restTarget(cfg)
		if err != nil {
			return nil, err
		}
		s.rest, s.info.tls = t, t.tls != nil
		switch {
		case cfg.Token != "":
			s.label = "X-Auth-Token"
		case cfg.Project != "":
			s.label = "no-auth headers (X-Project-Id, X-Roles)"
		}
	}
	if s.info.protocol == "kmip" {
		kt, err := kmipConnect(ctx, cfg, cfg.Target)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.kmip, s.info.tls, s.label = kt, true, "mutual TLS, client certificate "+cfg.ClientCert
		return s, nil
	}
	if cfg.Keystone {
		tok, err := keystoneToken(ctx)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.rest.headers, s.label = "X-Auth-Token: "+tok+"\r\n", "Keystone token"
	}
	if err := s.rest.probe("server"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *session) run(cfg Config, out io.Writer) ([]Result, error) {
	if s.info.protocol == "kmip" {
		return s.runKMIPOps(cfg, out)
	}
	return s.runREST(cfg, out)
}

// getSet is how many of its keys each client reads in "get"; firstGetLimit
// bounds the first reads of them.
const (
	getSet        = 256
	firstGetLimit = time.Minute
)

// runREST runs the REST workloads: create (POST /v1/secrets) and get
// (GET /v1/secrets/{id}/payload).
func (s *session) runREST(cfg Config, out io.Writer) ([]Result, error) {
	tgt := s.rest
	scheme := "http"
	if tgt.tls != nil {
		scheme = "https"
	}
	fmt.Fprintf(out, "keywarden bench: %d %s, %s per operation, target %s://%s, %s, GOMAXPROCS shared with the server\n\n",
		cfg.Clients, conns(s.info), cfg.Duration, scheme, tgt.addr, s.label)
	var results []Result
	ids := make([][]string, cfg.Clients)
	for _, op := range cfg.Ops {
		var res Result
		var cpu0 [2]time.Duration
		start := func(name string) {
			cpu0 = [2]time.Duration{processCPUs(tgt.serverPIDs), processCPU(0)}
			s.profile(name)
		}
		switch op {
		case "create":
			start(op)
			res = run(tgt, cfg.Clients, cfg.Duration, func(c int, buf []byte) request {
				return createReq(tgt, buf, &ids[c])
			})
		case "get":
			if len(slices.Concat(ids...)) == 0 {
				seed := run(tgt, cfg.Clients, time.Second, func(c int, buf []byte) request { return createReq(tgt, buf, &ids[c]) })
				if seed.N == 0 {
					return nil, fmt.Errorf("bench: could not create any secret to read: %s", seed.FirstErr)
				}
			}
			// Each client reads a working set of its last getSet keys.
			// The first read of a key is a state change (KMIP's Fresh
			// attribute is cleared, audited), so it is its own row,
			// "get-first", before the repeated reads "get" measures.
			all := slices.Concat(ids...)
			for c := range ids {
				if len(ids[c]) == 0 {
					ids[c] = all
				}
				ids[c] = ids[c][max(0, len(ids[c])-getSet):]
			}
			next := make([]int, cfg.Clients)
			start("get-first")
			first := run(tgt, cfg.Clients, firstGetLimit, func(c int, buf []byte) request {
				if next[c] == len(ids[c]) {
					return request{}
				}
				next[c]++
				return getReq(tgt, buf, ids[c][next[c]-1])
			})
			first.Op = "get-first"
			s.finish(&first, tgt.serverPIDs, cpu0, out)
			results = append(results, first)
			start(op)
			res = run(tgt, cfg.Clients, cfg.Duration, func(c int, buf []byte) request {
				id := ids[c][next[c]%len(ids[c])]
				next[c]++
				return getReq(tgt, buf, id)
			})
		default:
			return nil, fmt.Errorf("--ops: unknown operation %q (REST: create, get)", op)
		}
		res.Op = op
		s.finish(&res, tgt.serverPIDs, cpu0, out)
		results = append(results, res)
	}
	return results, nil
}

// finish fills in the CPU figures and reports the first error.
func (s *session) finish(res *Result, pids []int, cpu0 [2]time.Duration, out io.Writer) {
	res.ServerCPU = -1
	if len(pids) > 0 {
		res.ServerCPU = cpusSince(pids, cpu0[0])
	}
	res.BenchCPU = cpuSince(0, cpu0[1])
	if res.FirstErr != "" {
		fmt.Fprintf(out, "first error (%s): %s\n", res.Op, res.FirstErr)
	}
}
