package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kmip"
	"github.com/keywarden/keywarden/kmip/kmiptest"
	"github.com/keywarden/keywarden/kmip/pki"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/kmstest"
)

// kmipServer runs Keywarden's KMIP server in this process (real bolt store,
// service, CA, mutual TLS on loopback) and returns its address and the
// directory of a client's files (client.pem, client-key.pem, ca.pem).
func kmipServer(t *testing.T, opts kmip.TLSOptions) (addr, clientDir string, ca *pki.CA) {
	t.Helper()
	ca, _, err := pki.LoadOrCreate(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _, err := ca.EnsureServer([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := kmip.NewIdentities(ca.Certificate(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, addr = kmiptest.Serve(t, kmip.Config{Service: kmstest.Service(t, kms.Config{}), Certificate: cert, Identities: ids, TLS: opts})
	return addr, clientFiles(t, ca), ca
}

func clientFiles(t *testing.T, ca *pki.CA) string {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueClient(pki.ClientRequest{Project: "bench", User: "bench", Roles: []string{"admin"}, KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := ca.WriteClient(dir, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return dir
}

func kmipConfig(addr, dir string) Config {
	return Config{Target: addr, Protocol: "kmip", Clients: 2, InFlight: 4, Duration: 500 * time.Millisecond,
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"), CACert: filepath.Join(dir, "ca.pem")}
}

// TestKMIPWorkloads runs every KMIP workload against a real server: no
// errors, and each Create's key is then read by Get.
func TestKMIPWorkloads(t *testing.T) {
	addr, dir, _ := kmipServer(t, kmip.TLSOptions{})
	cfg := kmipConfig(addr, dir)
	cfg.Ops = []string{"pair", "create", "get"}
	var out bytes.Buffer
	if err := Bench(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "KMIP 1.4 at "+addr) {
		t.Errorf("header: %s", out.String())
	}
	for _, op := range cfg.Ops {
		line := tableLine(t, out.String(), op)
		if f := strings.Fields(line); len(f) < 3 || f[1] == "0" || f[2] != "0" {
			t.Errorf("%s: %q, want requests and no errors", op, line)
		}
	}
}

// TestKMIPOneAtATime: one connection, one message in flight, and the
// legacy suites (TLS 1.2 CBC/RSA key exchange) against a server that
// allows them, as PyKMIP's requires.
func TestKMIPLegacyCiphers(t *testing.T) {
	addr, dir, _ := kmipServer(t, kmip.TLSOptions{LegacyCipherSuites: true})
	cfg := kmipConfig(addr, dir)
	cfg.Clients, cfg.InFlight, cfg.LegacyCiphers, cfg.Ops = 1, 1, true, []string{"pair"}
	var out bytes.Buffer
	if err := Bench(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(tableLine(t, out.String(), "pair")); f[1] == "0" || f[2] != "0" {
		t.Errorf("pair: %v", f)
	}
	if !strings.Contains(out.String(), "pair at 1 connection:") {
		t.Errorf("no target line for one connection:\n%s", out.String())
	}
}

// TestKMIPBadInput: each mistake is one clear error before any load.
func TestKMIPBadInput(t *testing.T) {
	addr, dir, _ := kmipServer(t, kmip.TLSOptions{})
	_, _, other := kmipServer(t, kmip.TLSOptions{})
	foreign := clientFiles(t, other)
	closed, _ := freeAddr()
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"unreachable", func(c *Config) { c.Target = closed }, "connection refused"},
		{"no host:port", func(c *Config) { c.Target = "kmip.example" }, "want host:port"},
		{"no certificate", func(c *Config) { c.ClientCert, c.ClientKey = "", "" }, "needs a client certificate"},
		{"missing key file", func(c *Config) { c.ClientKey = filepath.Join(dir, "nope.pem") }, "nope.pem"},
		{"wrong CA", func(c *Config) { c.CACert = filepath.Join(foreign, "ca.pem") }, "--ca"},
		{"certificate of another CA", func(c *Config) {
			c.ClientCert, c.ClientKey = filepath.Join(foreign, "client.pem"), filepath.Join(foreign, "client-key.pem")
		}, "refused the client certificate"},
		{"token", func(c *Config) { c.Token = "x" }, "client certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := kmipConfig(addr, dir)
			c.edit(&cfg)
			err := Bench(context.Background(), cfg, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
		})
	}
}

// TestCheckAnswer: the scan agrees with ovh's decoder on success, finds
// the Create's identifier, and words a failure with its reason.
func TestCheckAnswer(t *testing.T) {
	ok := ovh.ResponseMessage{
		Header: ovh.ResponseHeader{ProtocolVersion: ovh.V1_4, TimeStamp: time.Unix(1700000000, 0), BatchCount: 2},
		BatchItem: []ovh.ResponseBatchItem{
			{Operation: ovh.OperationCreate, ResultStatus: ovh.ResultStatusSuccess,
				ResponsePayload: &payloads.CreateResponsePayload{ObjectType: ovh.ObjectTypeSymmetricKey, UniqueIdentifier: "id-1"}},
			{Operation: ovh.OperationGet, ResultStatus: ovh.ResultStatusSuccess},
		},
	}
	uid, err := checkAnswer(ttlv.MarshalTTLV(&ok))
	if err != nil || uid != "id-1" {
		t.Fatalf("checkAnswer = %q, %v", uid, err)
	}
	bad := ok
	bad.BatchItem = []ovh.ResponseBatchItem{{Operation: ovh.OperationGet, ResultStatus: ovh.ResultStatusOperationFailed,
		ResultReason: ovh.ResultReasonItemNotFound, ResultMessage: "no such key"}}
	if _, err := checkAnswer(ttlv.MarshalTTLV(&bad)); err == nil || !strings.Contains(err.Error(), "no such key") {
		t.Fatalf("failed item: %v", err)
	}
	for _, junk := range [][]byte{nil, []byte("HTTP/1.1 400 Bad Request\r\n"), ttlv.MarshalTTLV(&ok)[:20]} {
		if _, err := checkAnswer(junk); err == nil {
			t.Errorf("checkAnswer(%q): want an error", junk)
		}
	}
}

// tableLine is the results table's line of op.
func tableLine(t *testing.T, out, op string) string {
	t.Helper()
	for l := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == op {
			return l
		}
	}
	t.Fatalf("no %s line in:\n%s", op, out)
	return ""
}
