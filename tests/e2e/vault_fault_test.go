package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ovh "github.com/ovh/kmip-go"

	"github.com/keywarden/keywarden/tests/testserver"
	"github.com/keywarden/keywarden/tests/vaulttest"
)

// tcpCut is the fault injector of the Vault test: a TCP forwarder in front
// of the real Vault. down closes its listener and every connection through
// it, so keywarden sees what a dead or partitioned Vault host gives
// (connection refused); up listens again on the same port. It is the one
// fake in the test: vaulttest runs Vault in dev mode, in memory, so killing
// and restarting the Vault process would lose the Transit key.
type tcpCut struct {
	t      *testing.T
	addr   string // host:port keywarden dials
	target string // Vault's host:port

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newTCPCut(t *testing.T, target string) *tcpCut {
	p := &tcpCut{t: t, addr: testserver.FreeAddr(t), target: target, conns: map[net.Conn]struct{}{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *tcpCut) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: listening again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *tcpCut) forward(c net.Conn) {
	v, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, v) {
		return
	}
	go func() { io.Copy(v, c); v.Close() }()
	io.Copy(c, v)
	c.Close()
}

// track registers a forwarded pair, or closes it when the proxy went down
// meanwhile.
func (p *tcpCut) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *tcpCut) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// TestVaultUnreachable: a Transit master key whose Vault cannot be reached.
// At start-up serve exits non-zero naming the address. In mid-run, projects
// whose KEK is cached keep working; a new project's first create gets REST
// 503 with a Barbican body and KMIP Operation Failed, and nothing of it is
// stored; when Vault is back the service returns by itself, and every
// acknowledged create is readable.
func TestVaultUnreachable(t *testing.T) {
	v := vaulttest.Start(t, false)
	key := v.NewKey(t, "aes256-gcm96")
	px := newTCPCut(t, strings.TrimPrefix(v.Addr, "http://"))
	vaultAddr := "http://" + px.addr
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "vault-token")
	cfg := filepath.Join(dir, "transit.yaml")
	if err := os.WriteFile(tokenFile, []byte(v.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("master_key:\n  type: transit\n  transit:\n    address: %s\n    token_file: %s\n    key: %s\n    timeout: 3s\n",
		vaultAddr, tokenFile, key)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	// Start-up with Vault unreachable: a non-zero exit naming key and address.
	px.down()
	testserver.Binary(t) // built before the clock starts
	start := time.Now()
	out, err := testserver.Run(t, "serve", "--data-dir", dir, "--config", cfg, "--insecure-noauth",
		"--rest-addr", testserver.FreeAddr(t), "--kmip-addr", "")
	startupFail := time.Since(start)
	if err == nil || !strings.Contains(out, "at "+vaultAddr) || !strings.Contains(out, "transit:transit/"+key) ||
		!strings.Contains(out, "does not answer") {
		t.Fatalf("serve with Vault unreachable: %v\n%s", err, out)
	}
	if startupFail > 10*time.Second {
		t.Fatalf("start-up took %v to give up", startupFail)
	}
	t.Logf("start-up, Vault unreachable: exit %v after %v:\n%s", err, startupFail.Round(time.Millisecond), strings.TrimSpace(out))

	px.up()
	srv := testserver.Start(t, testserver.Options{NoAuth: true, KMIP: true, DataDir: dir, Args: []string{"--config", cfg}})
	kc := kmipClient(t, srv, "kmip-cold")

	type ack struct{ project, ref, payload string }
	var acks []ack
	create := func(project string) int {
		t.Helper()
		p := "p-" + rand.Text()
		code, b := createStatus(t, srv.URL, project, []byte(p))
		if code == 201 {
			acks = append(acks, ack{project, string(b), p})
		}
		return code
	}
	for range 5 {
		if code := create("warm"); code != 201 {
			t.Fatalf("create before the outage: %d", code)
		}
	}

	px.down()
	// A project whose KEK is cached needs nothing from Vault.
	for range 5 {
		if code := create("warm"); code != 201 {
			t.Fatalf("create in a warm project with Vault down: %d", code)
		}
	}
	for _, a := range acks {
		if got := readText(t, srv.URL, a.project, a.ref); got != a.payload {
			t.Fatalf("read with Vault down: %q", got)
		}
	}
	// A new project needs Vault to wrap its KEK: 503, a Barbican body.
	start = time.Now()
	code, b := createStatus(t, srv.URL, "cold", []byte("refused"))
	refusal := time.Since(start)
	var eb struct {
		Code        int    `json:"code"`
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(b, &eb); err != nil || code != 503 || eb.Code != 503 ||
		!strings.Contains(eb.Description, "master key") {
		t.Fatalf("new project with Vault down: %d %s", code, b)
	}
	if refusal > 5*time.Second {
		t.Fatalf("the 503 took %v", refusal)
	}
	t.Logf("REST, new project, Vault down: %d after %v: %s", code, refusal.Round(time.Millisecond), b)
	ctx := context.Background()
	_, kerr := kc.Create().AES(256, ovh.CryptographicUsageEncrypt).WithName("cold-key").ExecContext(ctx)
	if kerr == nil || !strings.Contains(kerr.Error(), "OperationFailed") || !strings.Contains(kerr.Error(), "master key") {
		t.Fatalf("KMIP create in a new project with Vault down: %v", kerr)
	}
	t.Logf("KMIP, new project, Vault down: %v", kerr)
	if n := countSecrets(t, srv.URL, "cold"); n != 0 {
		t.Fatalf("%d secrets stored by refused creates", n)
	}

	// Vault is back: the first new project's create, without a restart.
	px.up()
	back := time.Now()
	var resumed time.Duration
	for {
		if code := create("cold-" + rand.Text()[:8]); code == 201 {
			resumed = time.Since(back)
			break
		} else if code != 503 {
			t.Fatalf("create after Vault returned: %d", code)
		}
		if time.Since(back) > 30*time.Second {
			t.Fatal("no successful create 30s after Vault returned")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := create("cold"); code != 201 {
		t.Fatalf("the refused project after Vault returned: %d", code)
	}
	if n := countSecrets(t, srv.URL, "cold"); n != 1 {
		t.Fatalf("project cold holds %d secrets, want the 1 created after the outage", n)
	}
	if _, err := kc.Create().AES(256, ovh.CryptographicUsageEncrypt).WithName("cold-key").ExecContext(ctx); err != nil {
		t.Fatalf("KMIP create after Vault returned: %v", err)
	}
	for _, a := range acks {
		if got := readText(t, srv.URL, a.project, a.ref); got != a.payload {
			t.Fatalf("read after the outage: %q", got)
		}
	}
	t.Logf("Vault back → first new-project create in %v; %d acknowledged creates (before, during, after) all readable",
		resumed.Round(time.Millisecond), len(acks))
}
