package loadgen

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// started is a throw-away `keywarden serve`.
type started struct {
	rest     target
	kmipAddr string // with KMIP: its address; the client files are in clientDir
	dataDir  string
	// clientDir holds client.pem, client-key.pem and ca.pem (pki issue-client).
	clientDir string
	pid       int
}

// freeAddr is a loopback address nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer runs the keywarden binary's serve command (self; empty: this
// executable) on a free port with a fresh data dir and a minted token; with
// kmip, its KMIP endpoint too and a client certificate for it.
func startServer(self, dataDir, cpuProfile string, profileOnSignal bool, config string, withTLS, kmip bool) (stop func(), s started, err error) {
	if withTLS && config != "" {
		return nil, s, errors.New("bench: --server-tls writes the started server's config: use --server-config with rest.tls_cert and a --target instead")
	}
	tmp := dataDir == ""
	if tmp {
		if dataDir, err = os.MkdirTemp("", "keywarden-bench-"); err != nil {
			return nil, s, err
		}
	}
	cleanup := func() {
		if tmp {
			os.RemoveAll(dataDir)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		cleanup()
		return nil, s, err
	}
	var restTLS *tls.Config
	if withTLS {
		if config, restTLS, err = tlsConfigFile(dataDir); err != nil {
			cleanup()
			return nil, s, err
		}
	}
	if kmip {
		if s.kmipAddr, err = freeAddr(); err != nil {
			cleanup()
			return nil, s, err
		}
	}
	if self == "" {
		if self, err = os.Executable(); err != nil {
			cleanup()
			return nil, s, err
		}
	}
	args := []string{"serve", "--data-dir", dataDir, "--rest-addr", addr, "--kmip-addr", s.kmipAddr, "--log-level", "warn"}
	if config != "" {
		args = append(args, "--config", config)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	dieWithParent(cmd)
	if cpuProfile != "" {
		abs, _ := filepath.Abs(cpuProfile)
		cmd.Env = append(os.Environ(), "KEYWARDEN_CPUPROFILE="+abs)
		if profileOnSignal {
			cmd.Env = append(cmd.Env, "KEYWARDEN_CPUPROFILE_ON_SIGNAL=1")
		}
	}
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, s, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		cleanup()
	}
	for _, a := range []string{addr, s.kmipAddr} {
		if a == "" {
			continue
		}
		for i := 0; ; i++ {
			var c net.Conn
			if a == addr && restTLS != nil { // a bare connect would be logged as a failed handshake
				c, err = tls.Dial("tcp", a, restTLS)
			} else {
				c, err = net.Dial("tcp", a)
			}
			if err == nil {
				c.Close()
				break
			}
			if i > 200 {
				stop()
				return nil, s, fmt.Errorf("bench: server did not start on %s", a)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	out, err := exec.Command(self, "token", "--data-dir", dataDir, "--project", "bench", "--user", "bench", "--roles", "admin", "--ttl", "2h").Output()
	if err != nil {
		stop()
		return nil, s, fmt.Errorf("bench: minting a token: %w", err)
	}
	s.rest = target{addr: addr, host: addr, tls: restTLS, headers: "X-Auth-Token: " + strings.TrimSpace(string(out)) + "\r\n",
		serverPIDs: []int{cmd.Process.Pid}}
	s.dataDir, s.pid = dataDir, cmd.Process.Pid
	if kmip {
		s.clientDir = filepath.Join(dataDir, "bench-client")
		if out, err := exec.Command(self, "pki", "issue-client", "--data-dir", dataDir, "--project", "bench", "--user", "bench",
			"--roles", "admin", "--out", s.clientDir).CombinedOutput(); err != nil {
			stop()
			return nil, s, fmt.Errorf("bench: issuing a KMIP client certificate: %w: %s", err, out)
		}
	}
	return stop, s, nil
}

// tlsConfigFile gives the started server a REST certificate (--server-tls):
// a throw-away one like the bare TLS server's (ECDSA P-256, 127.0.0.1), its
// files and a config naming them in dir/bench-tls, and the client side
// that trusts it.
func tlsConfigFile(dir string) (config string, client *tls.Config, err error) {
	cert, pool, err := selfSigned()
	if err != nil {
		return "", nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", nil, err
	}
	tdir := filepath.Join(dir, "bench-tls")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return "", nil, err
	}
	certFile, keyFile := filepath.Join(tdir, "cert.pem"), filepath.Join(tdir, "key.pem")
	config = filepath.Join(tdir, "keywarden.yaml")
	for _, f := range []struct {
		path string
		data []byte
	}{
		{certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})},
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{config, fmt.Appendf(nil, "rest:\n  tls_cert: %q\n  tls_key: %q\n", certFile, keyFile)},
	} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return "", nil, err
		}
	}
	return config, &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: "127.0.0.1"}, nil
}
