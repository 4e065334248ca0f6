// Package testserver builds the real keywarden binary once per test process
// and runs it as a child process, the way an operator would.
package testserver

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of a freshly built cmd/keywarden.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "keywarden-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "keywarden")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/keywarden")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/keywarden: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Main runs the package's tests and removes the binary built for them;
// call it from TestMain.
func Main(m *testing.M) { os.Exit(RunAndClean(m)) }

// RunAndClean is Main without the exit, for a TestMain with more to stop
// after the tests; it returns m.Run's code.
func RunAndClean(m *testing.M) int {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	return code
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// DialFrom opens a TCP connection to addr from a chosen local (loopback)
// address, closed when the test ends: many client addresses on one host.
func DialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Server is a running `keywarden serve`.
type Server struct {
	URL      string // http://127.0.0.1:port
	RESTAddr string
	KMIPAddr string
	DataDir  string
	cmd      *exec.Cmd
	log      *syncBuffer
	done     chan struct{}
}

// Options for Start.
type Options struct {
	DataDir string   // default t.TempDir()
	NoAuth  bool     // --insecure-noauth
	KMIP    bool     // also listen for KMIP
	Args    []string // extra flags
}

// Start runs serve and waits until the REST port answers.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	s := &Server{DataDir: o.DataDir, RESTAddr: FreeAddr(t), log: &syncBuffer{}, done: make(chan struct{})}
	s.URL = "http://" + s.RESTAddr
	args := []string{"serve", "--data-dir", o.DataDir, "--rest-addr", s.RESTAddr}
	if o.KMIP {
		s.KMIPAddr = FreeAddr(t)
		args = append(args, "--kmip-addr", s.KMIPAddr)
	} else {
		args = append(args, "--kmip-addr", "")
	}
	if o.NoAuth {
		args = append(args, "--insecure-noauth")
	}
	args = append(args, o.Args...)
	s.cmd = exec.Command(Binary(t), args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("keywarden serve exited during start-up:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("keywarden serve did not answer on %s:\n%s", s.URL, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// Kill sends SIGKILL and waits.
func (s *Server) Kill() {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-s.done
}

// Stop sends SIGTERM and waits for a clean exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("server did not stop on SIGTERM:\n%s", s.Log())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("server exited %d after SIGTERM:\n%s", code, s.Log())
	}
}

// Token mints a development token with the server's token key.
func (s *Server) Token(t testing.TB, project, user, roles string) string {
	t.Helper()
	out, err := exec.Command(Binary(t), "token", "--data-dir", s.DataDir, "--project", project,
		"--user", user, "--roles", roles).Output()
	if err != nil {
		t.Fatalf("keywarden token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// Run runs the keywarden binary with args and returns combined output.
func Run(t testing.TB, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(Binary(t), args...).CombinedOutput()
	return string(out), err
}

// SyncBuffer is a buffer safe for concurrent writers: a log sink.
type SyncBuffer = syncBuffer

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
