// Package cluster runs Keywarden the way DESIGN.md scales it: several
// stateless `keywarden serve` nodes on one real etcd, the master key in a
// real Vault's Transit engine, tokens signed with one shared key.
package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/tests/etcdtest"
	"github.com/keywarden/keywarden/tests/testserver"
	"github.com/keywarden/keywarden/tests/vaulttest"
)

func TestMain(m *testing.M) { testserver.Main(m) }

type node struct {
	t     *testing.T
	srv   *testserver.Server
	token string
}

func (n node) do(method, path string, body any) (int, []byte) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.srv.URL+path, rd)
	req.Header.Set("X-Auth-Token", n.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasSuffix(path, "/payload") {
		req.Header.Set("Accept", "text/plain")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (n node) must(status int, method, path string, body any) []byte {
	n.t.Helper()
	got, b := n.do(method, path, body)
	if got != status {
		n.t.Fatalf("%s %s on %s: %d, want %d: %s", method, path, n.srv.URL, got, status, b)
	}
	return b
}

// pathOf is a ref's path, to ask any node.
func pathOf(ref string) string { return ref[strings.Index(ref, "/v1/"):] }

func TestTwoNodesOneEtcdTransitMaster(t *testing.T) {
	v := vaulttest.Start(t, false)
	key := v.NewKey(t, "aes256-gcm96")
	etcd := etcdtest.Start(t)
	shared := t.TempDir()
	tokenFile := filepath.Join(shared, "vault-token")
	os.WriteFile(tokenFile, []byte(v.Token), 0o600)
	cfg := filepath.Join(shared, "keywarden.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`store:
  backend: etcd
  etcd:
    endpoints: [%s]
    prefix: /kw-cluster/
master_key:
  type: transit
  transit: {address: %s, token_file: %s, key: %s}
auth:
  jwt:
    hmac_secret_file: %s
`, etcd, v.Addr, tokenFile, key, filepath.Join(shared, "token.key"))), 0o600)

	start := func(dir string) node {
		srv := testserver.Start(t, testserver.Options{DataDir: dir, Args: []string{"--config", cfg}})
		return node{t: t, srv: srv}
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := start(dirA), start(dirB)
	// Signed with the shared key: both nodes accept it.
	out, err := testserver.Run(t, "token", "--data-dir", shared, "--project", "p1", "--user", "cinder", "--roles", "admin")
	if err != nil {
		t.Fatalf("token: %v\n%s", err, out)
	}
	a.token, b.token = strings.TrimSpace(out), strings.TrimSpace(out)

	// A per-disk passphrase ordered on node a is the same secret on node b.
	orderRef := string(a.must(http.StatusAccepted, "POST", "/v1/orders", map[string]any{"type": "passphrase", "meta": map[string]any{
		"consumer":        map[string]string{"service": "cinder", "resource_type": "volume", "resource_id": "vol-1"},
		"deletion_policy": "on_last_consumer",
	}}))
	var o struct {
		OrderRef  string `json:"order_ref"`
		SecretRef string `json:"secret_ref"`
		Status    string `json:"status"`
	}
	json.Unmarshal([]byte(orderRef), &o)
	for i := 0; o.Status != "ACTIVE"; i++ {
		if i == 100 {
			t.Fatal("order never became ACTIVE")
		}
		json.Unmarshal(b.must(http.StatusOK, "GET", pathOf(o.OrderRef), nil), &o)
		time.Sleep(10 * time.Millisecond)
	}
	sec := pathOf(o.SecretRef)
	pa, pb := a.must(http.StatusOK, "GET", sec+"/payload", nil), b.must(http.StatusOK, "GET", sec+"/payload", nil)
	if len(pa) < 32 || !bytes.Equal(pa, pb) {
		t.Fatalf("the nodes disagree on the passphrase: %q vs %q", pa, pb)
	}
	// The consumer registered through a blocks a delete through b.
	b.must(http.StatusConflict, "DELETE", sec, nil)

	// 40 consumers added through both nodes at once: every one lands.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := [2]node{a, b}[i%2]
			n.must(http.StatusOK, "POST", sec+"/consumers", map[string]string{
				"service": "nova", "resource_type": "instance", "resource_id": fmt.Sprintf("inst-%d", i)})
		}()
	}
	wg.Wait()
	var got struct {
		Total int `json:"total"`
	}
	json.Unmarshal(a.must(http.StatusOK, "GET", sec+"/consumers?limit=100", nil), &got)
	if got.Total != 41 {
		t.Fatalf("consumers after concurrent adds on two nodes: %d, want 41", got.Total)
	}

	// Removing them through both nodes: the last removal destroys the key
	// (on_last_consumer), exactly once, and both nodes see it gone.
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := [2]node{a, b}[i%2]
			n.must(http.StatusOK, "DELETE", sec+"/consumers", map[string]string{
				"service": "nova", "resource_type": "instance", "resource_id": fmt.Sprintf("inst-%d", i)})
		}()
	}
	wg.Wait()
	a.must(http.StatusOK, "GET", sec, nil) // vol-1 still holds it
	b.do("DELETE", sec+"/consumers", map[string]string{"service": "cinder", "resource_type": "volume", "resource_id": "vol-1"})
	a.must(http.StatusNotFound, "GET", sec, nil)
	b.must(http.StatusNotFound, "GET", sec, nil)

	// Node a dies hard; b carries on; a comes back and reads what b made.
	a.srv.Kill()
	ref := b.must(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"payload": "made while a was down", "payload_content_type": "text/plain"})
	var created struct {
		SecretRef string `json:"secret_ref"`
	}
	json.Unmarshal(ref, &created)
	a = start(dirA)
	a.token = b.token
	if p := a.must(http.StatusOK, "GET", pathOf(created.SecretRef)+"/payload", nil); string(p) != "made while a was down" {
		t.Fatalf("node a after restart reads %q", p)
	}
	// No node holds a local root key: the master key is Vault's.
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, "root.key")); err == nil {
			t.Fatalf("%s has a root.key though the master key is in Vault", dir)
		}
	}
}
