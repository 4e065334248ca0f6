package etcd

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kmip/pki"
	"github.com/keywarden/keywarden/kms/store"
	"github.com/keywarden/keywarden/tests/etcdtest"
)

// TestTLS: a real etcd serving only TLS and requiring client
// certificates: the store reaches it with the TLS files; without a client
// certificate, with a wrong server name or another CA it does not; a
// world-readable client key is refused before any connection.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvCert, srvKey, err := ca.IssueServer([]string{"127.0.0.1", "etcd.internal"})
	if err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey, err := ca.IssueClient(pki.ClientRequest{Project: "keywarden", User: "keywarden", KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, pki.CAFile)
	files := TLSFiles{CAFile: caFile, CertFile: write("client.pem", cliCert, 0o644), KeyFile: write("client-key.pem", cliKey, 0o600)}
	endpoint := etcdtest.StartTLS(t, etcdtest.TLS{
		CertFile: write("etcd.pem", srvCert, 0o644), KeyFile: write("etcd-key.pem", srvKey, 0o600), CAFile: caFile, ClientCert: pair})

	open := func(f TLSFiles, endpoints ...string) (*Store, error) {
		c, err := f.Config()
		if err != nil {
			return nil, err
		}
		return Open(Config{Endpoints: endpoints, TLS: c, DialTimeout: 3 * time.Second, Prefix: "/tls/"})
	}
	s, err := open(files, endpoint)
	if err != nil {
		t.Fatalf("with the TLS files: %v", err)
	}
	ctx := context.Background()
	if err := s.Txn(ctx, nil, []store.Op{store.Put("k", []byte("v"))}); err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(ctx, "k"); err != nil || string(kv.Value) != "v" {
		t.Fatalf("get over TLS: %v %v", kv, err)
	}
	s.Close()
	// The host named by server_name instead of the address.
	named := files
	named.ServerName = "etcd.internal"
	if s, err := open(named, endpoint); err != nil {
		t.Fatalf("server_name etcd.internal: %v", err)
	} else {
		s.Close()
	}

	other, _, _ := pki.LoadOrCreate(t.TempDir())
	for name, f := range map[string]TLSFiles{
		"no client certificate": {CAFile: caFile},
		"wrong server name":     {CAFile: caFile, CertFile: files.CertFile, KeyFile: files.KeyFile, ServerName: "etcd.example.org"},
		"another CA":            {CAFile: filepath.Join(other.Dir(), pki.CAFile), CertFile: files.CertFile, KeyFile: files.KeyFile},
	} {
		if s, err := open(f, endpoint); err == nil {
			s.Close()
			t.Fatalf("%s: connected", name)
		}
	}
	// The client key is a key file: group- or world-readable is refused.
	loose := files
	loose.KeyFile = write("loose-key.pem", cliKey, 0o644)
	if _, err := loose.Config(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 client key: %v", err)
	}
	if _, err := (TLSFiles{CertFile: files.CertFile}).Config(); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
}

// TestPlainHTTPRefused: http:// to another host is refused before any
// connection unless allowed; loopback, https and unix are fine.
func TestPlainHTTPRefused(t *testing.T) {
	for _, c := range []struct {
		eps       []string
		tls, allw bool
		ok        bool
	}{
		{[]string{"http://127.0.0.1:2379"}, false, false, true},
		{[]string{"http://localhost:2379", "http://[::1]:2379"}, false, false, true},
		{[]string{"https://10.0.0.1:2379"}, true, false, true},
		{[]string{"10.0.0.1:2379"}, true, false, true},
		{[]string{"http://10.0.0.1:2379"}, false, false, false},
		{[]string{"http://127.0.0.1:2379", "http://etcd-2.example.net:2379"}, false, false, false},
		{[]string{"10.0.0.1:2379"}, false, false, false},
		{[]string{"http://10.0.0.1:2379"}, false, true, true},
		{[]string{"http://127.0.0.1:2379"}, true, false, false}, // TLS configured, http endpoint
		{[]string{"ftp://10.0.0.1"}, false, true, false},
	} {
		err := CheckEndpoints(c.eps, c.tls, c.allw)
		if (err == nil) != c.ok {
			t.Errorf("%v tls=%v allow=%v: %v", c.eps, c.tls, c.allw, err)
		}
	}
	// Open applies it.
	if _, err := Open(Config{Endpoints: []string{"http://192.0.2.1:2379"}, DialTimeout: 100 * time.Millisecond}); err == nil ||
		!strings.Contains(err.Error(), "allow_insecure_http") {
		t.Fatalf("Open with a plain http remote endpoint: %v", err)
	}
}
