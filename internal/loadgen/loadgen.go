// Package loadgen is the project's load tool behind `keywarden bench`: N
// persistent HTTP/1.1 connections, each issuing requests back to back, with
// latency percentiles per operation. The client side is a few lines over
// net.Conn so that the load generator does not cost more CPU than the server
// it measures (both share this machine).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"time"
)

// Config is one run. Without URL, Run starts a throw-away server (Binary's
// serve command) and drives it.
type Config struct {
	URL     string // server base URL; empty: start one
	Token   string // X-Auth-Token for URL
	Project string // X-Project-Id for URL servers in --insecure-noauth mode
	Ops     []string
	Clients int
	// Duration is the time per operation.
	Duration time.Duration
	// Keystone sends a Keystone token obtained with the OS_* environment.
	Keystone bool

	// The started server: its binary (default: this executable), data dir
	// (default: temporary, removed), CPU profile and config file.
	Binary, DataDir, CPUProfile, ServerConfig string
}

// Run drives the target for each of cfg.Ops in turn. It writes the header
// line when it starts and each operation's first error as it ends; the
// results are for WriteTable.
func Run(ctx context.Context, cfg Config, out io.Writer) ([]Result, error) {
	if cfg.Clients < 1 {
		return nil, errors.New("--clients must be at least 1")
	}
	var tgt target
	if cfg.URL == "" {
		stop, t, err := startServer(cfg.Binary, cfg.DataDir, cfg.CPUProfile, cfg.ServerConfig)
		if err != nil {
			return nil, err
		}
		defer stop()
		tgt = t
		if cfg.Keystone {
			tgt.headers = ""
		}
	} else {
		u, err := url.Parse(cfg.URL)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("--url %q: want http://host:port", cfg.URL)
		}
		tgt = target{addr: u.Host, host: u.Host}
		switch {
		case cfg.Keystone:
		case cfg.Token != "":
			tgt.headers = "X-Auth-Token: " + cfg.Token + "\r\n"
		case cfg.Project != "":
			tgt.headers = "X-Project-Id: " + cfg.Project + "\r\nX-Roles: admin\r\n"
		default:
			return nil, errors.New("--url needs --token or --project")
		}
	}
	auth := "JWT"
	if cfg.Keystone {
		tok, err := keystoneToken(ctx)
		if err != nil {
			return nil, err
		}
		tgt.headers, auth = "X-Auth-Token: "+tok+"\r\n", "Keystone token"
	}
	fmt.Fprintf(out, "keywarden bench: %d clients, %s per operation, target %s, %s, GOMAXPROCS shared with the server\n\n",
		cfg.Clients, cfg.Duration, tgt.addr, auth)
	var results []Result
	ids := make([][]string, cfg.Clients)
	for _, op := range cfg.Ops {
		var res Result
		var cpu0 [2]time.Duration
		start := func() { cpu0 = [2]time.Duration{processCPU(tgt.serverPID), processCPU(0)} }
		switch op {
		case "create":
			start()
			res = run(tgt, cfg.Clients, cfg.Duration, func(c int, buf []byte) request {
				return createReq(tgt, buf, &ids[c])
			})
		case "get":
			if len(slices.Concat(ids...)) == 0 {
				seed := run(tgt, cfg.Clients, time.Second, func(c int, buf []byte) request { return createReq(tgt, buf, &ids[c]) })
				if seed.N == 0 {
					return nil, errors.New("bench: could not create any secret to read")
				}
			}
			next := make([]int, cfg.Clients)
			start()
			res = run(tgt, cfg.Clients, cfg.Duration, func(c int, buf []byte) request {
				own := ids[c]
				if len(own) == 0 {
					own = ids[0]
				}
				id := own[next[c]%len(own)]
				next[c]++
				return getReq(tgt, buf, id)
			})
		default:
			return nil, fmt.Errorf("--ops: unknown operation %q", op)
		}
		res.Op = op
		res.ServerCPU = -1
		if tgt.serverPID != 0 {
			res.ServerCPU = cpuSince(tgt.serverPID, cpu0[0])
		}
		res.BenchCPU = cpuSince(0, cpu0[1])
		results = append(results, res)
		if res.FirstErr != "" {
			fmt.Fprintf(out, "first error (%s): %s\n", op, res.FirstErr)
		}
	}
	return results, nil
}

// cpuSince is the CPU process pid (0: this one) used since it had used
// before; -1 when either is unknown.
func cpuSince(pid int, before time.Duration) time.Duration {
	total := processCPU(pid) - before
	if before < 0 || total < 0 {
		return -1
	}
	return total
}
