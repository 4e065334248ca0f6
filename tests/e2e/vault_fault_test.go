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

// vaultProxy is the fault injector of the Vault test: a TCP forwarder in
// front of the real Vault. down closes its listener and every connection
// through it, so keywarden sees what a dead or partitioned Vault host gives
// (connection refused); hang accepts connections and never answers (a
// stopped process, a black-holed route); up forwards again on the same
// port. It stands in for the network only: vaulttest runs Vault in dev
// mode, in memory, so killing and restarting the Vault process would lose
// the Transit key. A sealed Vault needs no fake (Server.Seal).
type vaultProxy struct {
	t      *testing.T
	addr   string // host:port keywarden dials
	target string // Vault's host:port

	mu      sync.Mutex
	ln      net.Listener
	hanging bool
	conns   map[net.Conn]struct{}
}

func newVaultProxy(t *testing.T, target string) *vaultProxy {
	p := &vaultProxy{t: t, addr: testserver.FreeAddr(t), target: target, conns: map[net.Conn]struct{}{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

// up forwards to Vault again; connections held by hang are dropped.
func (p *vaultProxy) up() { p.set(true, false) }

// hang holds every new connection open without a byte of answer.
func (p *vaultProxy) hang() { p.set(true, true) }

// down refuses connections.
func (p *vaultProxy) down() { p.set(false, false) }

func (p *vaultProxy) set(listening, hanging bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.hanging = hanging
	if !listening && p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	if listening && p.ln == nil {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			p.t.Errorf("proxy: listening again on %s: %v", p.addr, err)
			return
		}
		p.ln = ln
		go p.accept(ln)
	}
}

func (p *vaultProxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *vaultProxy) forward(c net.Conn) {
	p.mu.Lock()
	hanging := p.hanging
	p.mu.Unlock()
	if hanging {
		p.track(c)
		return
	}
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

// track registers connections, or closes them when the proxy went down
// meanwhile.
func (p *vaultProxy) track(cs ...net.Conn) bool {
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

// TestVaultUnreachable: a Transit master key whose Vault cannot be reached.
// At start-up serve exits non-zero naming the address. In mid-run, projects
// whose KEK is cached keep working; a new project's first create gets REST
// 503 with a Barbican body and KMIP Operation Failed, and nothing of it is
// stored; when Vault is back the service returns by itself, and every
// acknowledged create is readable.
func TestVaultUnreachable(t *testing.T) {
	v := vaulttest.Start(t, false)
	key := v.NewKey(t, "aes256-gcm96")
	px := newVaultProxy(t, strings.TrimPrefix(v.Addr, "http://"))
	vaultAddr := "http://" + px.addr
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "vault-token")
	cfg := filepath.Join(dir, "transit.yaml")
	if err := os.WriteFile(tokenFile, []byte(v.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("master_key:\n  type: transit\n  transit:\n    address: %s\n    token_file: %s\n    key: %s\n", // the default timeout (5s)
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
	type ack struct{ project, ref, payload string }
	var acks []ack
	create := func(project string) (int, []byte) {
		t.Helper()
		p := "p-" + rand.Text()
		code, b := createStatus(srv.URL, project, []byte(p))
		if code == 201 {
			acks = append(acks, ack{project, string(b), p})
		}
		return code, b
	}
	for range 5 {
		if code, b := create("warm"); code != 201 {
			t.Fatalf("create before the outage: %d %s", code, b)
		}
	}

	ctx := context.Background()
	faults := []struct {
		name           string
		fault, restore func()
		within         time.Duration // the 503 comes within
	}{
		{"unreachable", px.down, px.up, 5 * time.Second},
		{"hung", px.hang, px.up, 7 * time.Second}, // the default timeout: 5s
		{"sealed", func() { v.Seal(t) }, func() { v.Unseal(t) }, 5 * time.Second},
	}
	for i, f := range faults {
		cold := fmt.Sprintf("cold-%d", i)
		kc := kmipClient(t, srv, "kmip-"+cold, "kim", "admin") // the certificate is issued while Vault is up
		f.fault()
		// A project whose KEK is cached needs nothing from Vault.
		for range 2 {
			if code, b := create("warm"); code != 201 {
				t.Fatalf("Vault %s: create in a warm project: %d %s", f.name, code, b)
			}
		}
		for _, a := range acks {
			if got := readText(t, srv.URL, a.project, a.ref); got != a.payload {
				t.Fatalf("Vault %s: read: %q", f.name, got)
			}
		}
		// A new project needs Vault to wrap its KEK: 503, a Barbican body.
		start := time.Now()
		code, b := create(cold)
		refusal := time.Since(start)
		var eb struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		}
		if err := json.Unmarshal(b, &eb); err != nil || code != 503 || eb.Code != 503 ||
			!strings.Contains(eb.Description, "master key") {
			t.Fatalf("Vault %s: new project: %d %s", f.name, code, b)
		}
		if refusal > f.within {
			t.Fatalf("Vault %s: the 503 took %v", f.name, refusal)
		}
		_, kerr := kc.Create().AES(256, ovh.CryptographicUsageEncrypt).WithName("cold-key").ExecContext(ctx)
		if kerr == nil || !strings.Contains(kerr.Error(), "OperationFailed") || !strings.Contains(kerr.Error(), "master key") {
			t.Fatalf("Vault %s: KMIP create in a new project: %v", f.name, kerr)
		}
		if n := countSecrets(t, srv.URL, cold); n != 0 {
			t.Fatalf("Vault %s: %d secrets stored by refused creates", f.name, n)
		}

		// Vault is back: the refused project's create succeeds, no restart.
		f.restore()
		back := time.Now()
		var resumed time.Duration
		for {
			code, b := create(cold)
			if code == 201 {
				resumed = time.Since(back)
				break
			} else if code != 503 || time.Since(back) > 30*time.Second {
				t.Fatalf("Vault %s, back: create: %d %s", f.name, code, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n := countSecrets(t, srv.URL, cold); n != 1 {
			t.Fatalf("Vault %s: project %s holds %d secrets, want the 1 created after the outage", f.name, cold, n)
		}
		if _, err := kc.Create().AES(256, ovh.CryptographicUsageEncrypt).WithName("cold-key").ExecContext(ctx); err != nil {
			t.Fatalf("Vault %s, back: KMIP create: %v", f.name, err)
		}
		t.Logf("Vault %s: new project's create → %d after %v: %s\n\tKMIP: %v\n\tVault back → first create in that project acknowledged after %v",
			f.name, code, refusal.Round(time.Millisecond), b, kerr, resumed.Round(time.Millisecond))
	}
	for _, a := range acks {
		if got := readText(t, srv.URL, a.project, a.ref); got != a.payload {
			t.Fatalf("read after the outages: %q", got)
		}
	}
	t.Logf("%d acknowledged creates (before, during, after the outages) all readable", len(acks))
}
