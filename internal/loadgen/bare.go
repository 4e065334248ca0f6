package loadgen

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The bare servers of --baseline run in a process of their own (`keywarden
// bench bare-server`), as the servers they stand beside do: on a machine
// that other work keeps busy, the kernel shares the CPU out per thread, and
// a server inside the load generator's process would get less of it than a
// separate server does.

// BareServerArgs are the arguments that run ServeBare in the binary.
var BareServerArgs = []string{"bench", "bare-server"}

// ServeBare listens on loopback and answers every request with 32 bytes,
// over TLS with a throw-away certificate when withTLS. It writes its
// address and then, with TLS, its certificate (PEM) to out, and serves
// until in ends (the bench closed it, or died).
func ServeBare(in io.Reader, out io.Writer, withTLS bool) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintln(out, ln.Addr().String())
	if withTLS {
		cert, _, err := selfSigned()
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		pem.Encode(out, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"application/octet-stream"}
		w.Write(bareBody)
	})}
	go func() {
		io.Copy(io.Discard, in)
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startBare runs the bare server as a child of binary self (empty: this
// executable) and returns its target and pid.
func startBare(self string, withTLS bool) (tgt target, pid int, stop func(), err error) {
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return tgt, 0, nil, err
		}
	}
	args := BareServerArgs
	if withTLS {
		args = append(args[:len(args):len(args)], "--tls")
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return tgt, 0, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return tgt, 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return tgt, 0, nil, fmt.Errorf("baseline: starting the bare server: %w", err)
	}
	stop = func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	fail := func(err error) (target, int, func(), error) {
		stop()
		return target{}, 0, nil, fmt.Errorf("baseline: the bare server (%s %s): %w", self, strings.Join(args, " "), err)
	}
	br := bufio.NewReader(stdout)
	addr, err := br.ReadString('\n')
	if err != nil {
		return fail(err)
	}
	addr = strings.TrimSpace(addr)
	tgt = target{addr: addr, host: addr}
	if withTLS {
		var certPEM []byte
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return fail(err)
			}
			certPEM = append(certPEM, line...)
			if strings.HasPrefix(string(line), "-----END ") {
				break
			}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(certPEM) {
			return fail(errors.New("no certificate"))
		}
		tgt.tls = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	}
	return tgt, cmd.Process.Pid, stop, nil
}
