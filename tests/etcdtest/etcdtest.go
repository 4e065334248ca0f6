// Package etcdtest runs Debian's real etcd server on loopback for tests.
package etcdtest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// FreePort is a loopback port free right now.
func FreePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs a one-member etcd until the test ends and returns its client
// URL once it answers /health.
func Start(t testing.TB) string {
	t.Helper()
	return start(t, "http", nil, http.DefaultClient)
}

// StartWith is Start with more etcd flags, e.g. a small
// --quota-backend-bytes.
func StartWith(t testing.TB, flags ...string) string {
	t.Helper()
	return start(t, "http", flags, http.DefaultClient)
}

// TLS are the files of an etcd served over TLS with client certificates.
type TLS struct {
	CertFile, KeyFile string // the server's
	CAFile            string // verifies clients (and, for the health check, the server)
	ClientCert        tls.Certificate
}

// StartTLS runs a one-member etcd that speaks only TLS on its client port
// and requires a client certificate the CA signed; it returns the https
// client URL once it answers /health.
func StartTLS(t testing.TB, f TLS) string {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(f.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{f.ClientCert}}}}
	return start(t, "https", []string{"--cert-file", f.CertFile, "--key-file", f.KeyFile,
		"--trusted-ca-file", f.CAFile, "--client-cert-auth"}, hc)
}

func start(t testing.TB, scheme string, extra []string, hc *http.Client) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatal("etcd is not installed: run `make deps` (Debian package etcd-server)")
	}
	client := fmt.Sprintf("%s://127.0.0.1:%d", scheme, FreePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	args := append([]string{"--name", "kw", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "kw=" + peer, "--log-level", "error"}, extra...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := hc.Get(client + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return client
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd at %s not healthy after 20s", client)
		}
	}
}

// Member is one etcd of a Cluster.
type Member struct {
	Name      string
	ClientURL string
	cmd       *exec.Cmd
	done      chan struct{}
}

// Kill sends SIGKILL to the member and waits for it to die.
func (m *Member) Kill() {
	m.cmd.Process.Kill()
	<-m.done
}

// Cluster is a multi-member etcd on loopback.
type Cluster struct {
	Members []*Member
}

// Endpoints are every member's client URL.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// StartCluster runs an n-member etcd cluster until the test ends and
// returns once every member answers /health.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatal("etcd is not installed: run `make deps` (Debian package etcd-server)")
	}
	c := &Cluster{}
	var initial []string
	peers := make([]string, n)
	for i := range n {
		peers[i] = fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
		c.Members = append(c.Members, &Member{Name: fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)), done: make(chan struct{})})
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	for i, m := range c.Members {
		m.cmd = exec.Command(bin, "--name", m.Name, "--data-dir", t.TempDir(),
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "kw-test", "--log-level", "error")
		if err := m.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { m.cmd.Wait(); close(m.done) }()
		t.Cleanup(func() { m.cmd.Process.Kill(); <-m.done })
	}
	for _, m := range c.Members {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if resp, err := http.Get(m.ClientURL + "/health"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcd member %s at %s not healthy after 30s", m.Name, m.ClientURL)
			}
		}
	}
	return c
}
