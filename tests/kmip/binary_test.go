package kmip_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ovh "github.com/ovh/kmip-go"

	"github.com/keywarden/keywarden/kmip/pki"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// keywardenBinary builds cmd/keywarden once per test binary.
func keywardenBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kw-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "keywarden")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/keywarden/keywarden/cmd/keywarden").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a running `keywarden serve` whose log lines are collected.
type process struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	seen  chan string
}

func startServe(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	return startProcess(t, bin, append([]string{"serve"}, args...)...)
}

// startProcess runs name with args (the binary, or a wrapper such as
// prlimit around it) and collects its log lines.
func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), seen: make(chan string, 100)}
	stderr, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.seen <- sc.Text():
			default:
			}
		}
	}()
	return p
}

// waitFor returns the first log line matching re.
func (p *process) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
		select {
		case <-p.seen:
		case <-deadline:
			p.mu.Lock()
			defer p.mu.Unlock()
			t.Fatalf("no log line matching %v in:\n%s", re, strings.Join(p.lines, "\n"))
		}
	}
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

var startedRE = regexp.MustCompile(`msg="keywarden started".* rest=(http://\S+) kmip=(\S+)`)

// TestServeBinary runs the real binary: the first serve makes the CA and
// server certificate and says where; `keywarden pki issue-client` makes a
// client; the config's kmip section (timeouts, size cap, another CA and its
// mapping) applies; SIGTERM stops it cleanly; a restart reuses the PKI.
func TestServeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := keywardenBinary(t)
	data := t.TempDir()
	foreign := newForeignCA(t)
	cfg := filepath.Join(t.TempDir(), "keywarden.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`metrics:
  addr: 127.0.0.1:0
kmip:
  addr: 127.0.0.1:0
  max_message: 65536
  read_timeout: 10s
  idle_timeout: 120
  client_cas: [%q]
  mappings:
    - ou: storage
      project: storage-team
      roles: [creator]
`, foreign.file)), 0o600)
	args := []string{"--config", cfg, "--data-dir", data, "--rest-addr", "127.0.0.1:0", "--insecure-noauth", "--log-level", "info"}
	p := startServe(t, bin, args...)
	m := p.waitFor(t, startedRE)
	restURL, kmipAddr := m[1], m[2]
	caMsg := p.waitFor(t, regexp.MustCompile(`kmip: created the KMIP certificate authority" ca=(\S+)`))
	if caMsg[1] != filepath.Join(data, "kmip", pki.CAFile) {
		t.Fatalf("CA at %s", caMsg[1])
	}
	p.waitFor(t, regexp.MustCompile(`kmip: issued the server certificate`))
	if strings.Contains(p.log(), "[INFO]") {
		t.Fatalf("cfssl logged:\n%s", p.log())
	}

	out := filepath.Join(t.TempDir(), "client")
	cli, err := exec.Command(bin, "pki", "issue-client", "--data-dir", data, "--project", "ops",
		"--user", "olive", "--roles", "admin", "--out", out).CombinedOutput()
	if err != nil {
		t.Fatalf("issue-client: %v\n%s", err, cli)
	}
	if _, err := exec.Command(bin, "pki", "issue-client", "--data-dir", data, "--project", "ops",
		"--user", "olive", "--roles", "root", "--out", out).CombinedOutput(); err == nil {
		t.Fatal("an unknown role was accepted")
	}

	s := &server{addr: kmipAddr}
	c := ovhClient(t, s, out)
	ctx := context.Background()
	cr, err := c.Create().AES(256, ovh.CryptographicUsageEncrypt).WithName("bin-key").ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(cr.UniqueIdentifier).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}

	// A certificate of the configured other CA, mapped by its OU.
	fdir := foreign.clientFiles(t, "ignored", "svc-cinder", mustRead(t, filepath.Join(out, "ca.pem")), "storage")
	fc := ovhClient(t, s, fdir)
	fcr, err := fc.Create().AES(128, ovh.CryptographicUsageEncrypt).WithName("team-key").ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", restURL+"/v1/secrets/"+fcr.UniqueIdentifier, nil)
	req.Header.Set("X-Project-Id", "storage-team")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if resp.StatusCode != 200 || meta["name"] != "team-key" || meta["creator_id"] != "svc-cinder" {
		t.Fatalf("mapped identity: %d %v", resp.StatusCode, meta)
	}

	// The Prometheus listener counts both protocols by route and operation,
	// and no series carries an id.
	mm := regexp.MustCompile(`metrics=(http://\S+)`).FindStringSubmatch(p.log())
	if mm == nil {
		t.Fatalf("no metrics address in the start-up line:\n%s", p.log())
	}
	mresp, err := http.Get(mm[1])
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`keywarden_kmip_operations_total{operation="Create",result="Success"} 2`,
		`keywarden_kmip_operations_total{operation="Get",result="Success"} 1`,
		`keywarden_rest_requests_total{code="200",method="GET",route="/v1/secrets/{id}"} 1`,
		`keywarden_kmip_operation_duration_seconds_count{operation="Get"} 1`,
	} {
		if !strings.Contains(string(scrape), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(scrape), cr.UniqueIdentifier) || strings.Contains(string(scrape), "storage-team") {
		t.Error("a metric label carries an id or a project")
	}

	// max_message from the config: a 100 KiB message is refused.
	raw := dialRaw(t, kmipAddr, out)
	hdr := []byte{0x42, 0x00, 0x78, 0x01, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[4:], 100<<10)
	raw.Write(hdr)
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(raw, make([]byte, 8)); err != nil {
		t.Fatalf("no answer to an oversized message: %v", err)
	}

	// SIGTERM: a clean stop.
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, p.log())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}

	// A restart finds the CA and server certificate and keeps them.
	p2 := startServe(t, bin, args...)
	m = p2.waitFor(t, startedRE)
	if strings.Contains(p2.log(), "created the KMIP") || strings.Contains(p2.log(), "issued the server certificate") {
		t.Fatalf("restart remade the PKI:\n%s", p2.log())
	}
	c2 := ovhClient(t, &server{addr: m[2]}, out)
	if _, err := c2.Get(cr.UniqueIdentifier).ExecContext(ctx); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dialRaw(t *testing.T, addr, dir string) *tls.Conn {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, filepath.Join(dir, "ca.pem")))
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
