package loadgen

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// target is the server under load.
type target struct {
	addr, host string
	headers    string // extra header lines, CRLF-terminated
	serverPID  int    // the started server, 0 with --url
}

// startServer runs the keywarden binary's serve command (self; empty: this
// executable) on a free port with a fresh data dir and a minted token.
func startServer(self, dataDir, cpuProfile, config string) (stop func(), tgt target, err error) {
	tmp := dataDir == ""
	if tmp {
		if dataDir, err = os.MkdirTemp("", "keywarden-bench-"); err != nil {
			return nil, tgt, err
		}
	}
	cleanup := func() {
		if tmp {
			os.RemoveAll(dataDir)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cleanup()
		return nil, tgt, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if self == "" {
		if self, err = os.Executable(); err != nil {
			cleanup()
			return nil, tgt, err
		}
	}
	args := []string{"serve", "--data-dir", dataDir, "--rest-addr", addr, "--kmip-addr", "", "--log-level", "warn"}
	if config != "" {
		args = append(args, "--config", config)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	if cpuProfile != "" {
		abs, _ := filepath.Abs(cpuProfile)
		cmd.Env = append(os.Environ(), "KEYWARDEN_CPUPROFILE="+abs)
	}
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, tgt, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		cleanup()
	}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			stop()
			return nil, tgt, fmt.Errorf("bench: server did not start on %s", addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
	out, err := exec.Command(self, "token", "--data-dir", dataDir, "--project", "bench", "--user", "bench", "--roles", "admin", "--ttl", "2h").Output()
	if err != nil {
		stop()
		return nil, tgt, fmt.Errorf("bench: minting a token: %w", err)
	}
	tgt = target{addr: addr, host: addr, headers: "X-Auth-Token: " + strings.TrimSpace(string(out)) + "\r\n",
		serverPID: cmd.Process.Pid}
	return stop, tgt, nil
}
