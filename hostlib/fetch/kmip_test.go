package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/keywarden/keywarden/hostlib"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipserver"
	"github.com/ovh/kmip-go/payloads"
)

// The KMIP client is tested against an independent KMIP implementation
// (ovh/kmip-go's server) over mutual TLS, where faults and odd objects are
// easy to stage; tests/host runs it against Keywarden's own KMIP port.

func init() { slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil))) }

var kmipObjects = map[string]kmip.Object{
	"sym-1": &kmip.SymmetricKey{KeyBlock: kmip.KeyBlock{
		KeyFormatType:          kmip.KeyFormatTypeRaw,
		KeyValue:               &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: ptr(append([]byte(nil), symKey...))}}},
		CryptographicAlgorithm: kmip.CryptographicAlgorithmAES,
		CryptographicLength:    int32(8 * len(symKey)),
	}},
	"pass-1": &kmip.SecretData{SecretDataType: kmip.SecretDataTypePassword, KeyBlock: kmip.KeyBlock{
		KeyFormatType: kmip.KeyFormatTypeOpaque,
		KeyValue:      &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: ptr([]byte("correct horse\n"))}}},
	}},
	"opaque-1": &kmip.OpaqueObject{OpaqueDataValue: []byte("opaque-bytes")},
	"cert-1":   &kmip.Certificate{CertificateType: kmip.CertificateTypeX_509, CertificateValue: []byte("not really DER")},
}

func ptr[T any](v T) *T { return &v }

// startKMIPServer serves kmipObjects to clients whose certificate CN is
// "host-1"; "secret-of-other-host" is always denied.
func startKMIPServer(t *testing.T, ca *testCA) string {
	_, _, pair := ca.issue("kmip-server", true)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	exec := kmipserver.NewBatchExecutor()
	exec.Route(kmip.OperationGet, kmipserver.HandleFunc(func(ctx context.Context, req *payloads.GetRequestPayload) (*payloads.GetResponsePayload, error) {
		certs := kmipserver.PeerCertificates(ctx)
		if len(certs) == 0 || certs[0].Subject.CommonName != "host-1" || req.UniqueIdentifier == "secret-of-other-host" {
			return nil, kmipserver.ErrPermissionDenied
		}
		obj, ok := kmipObjects[req.UniqueIdentifier]
		if !ok {
			return nil, kmipserver.ErrItemNotFound
		}
		return &payloads.GetResponsePayload{ObjectType: obj.ObjectType(), UniqueIdentifier: req.UniqueIdentifier, Object: obj}, nil
	}))
	srv := kmipserver.NewServer(ln, exec)
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

func kmipClient(t *testing.T, addr string, ca *testCA, clientCA *testCA, cn string) *Client {
	cert, key, _ := clientCA.issue(cn, false)
	c, err := New(Config{KMIP: &KMIPConfig{Addr: addr, CertFile: cert, KeyFile: key, CAFile: ca.caFile()}})
	if err != nil {
		t.Fatal(err)
	}
	c.retry = fastRetry
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKMIPFetchesEachObjectType(t *testing.T) {
	ca := newCA(t, "kw-test-ca")
	c := kmipClient(t, startKMIPServer(t, ca), ca, ca, "host-1")
	for _, tc := range []struct{ ref, typ, want string }{
		{"kmip:sym-1", hostlib.TypeSymmetric, string(symKey)},
		{"pass-1", hostlib.TypePassphrase, "correct horse\n"}, // bare id: KMIP is the only protocol configured
		{"kmip:opaque-1", hostlib.TypeOpaque, "opaque-bytes"},
	} {
		s, err := c.Fetch(context.Background(), tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if s.Type != tc.typ || string(s.Material()) != tc.want {
			t.Fatalf("%s: %s %q", tc.ref, s.Type, s.Material())
		}
		if tc.typ == hostlib.TypeSymmetric && (s.Algorithm != "aes" || s.BitLength != 128) {
			t.Fatalf("symmetric metadata: %q %d", s.Algorithm, s.BitLength)
		}
		s.Close()
	}
}

func TestKMIPErrors(t *testing.T) {
	ca := newCA(t, "kw-test-ca")
	addr := startKMIPServer(t, ca)
	c := kmipClient(t, addr, ca, ca, "host-1")
	for ref, want := range map[string]error{
		"kmip:missing":              hostlib.ErrNotFound,
		"kmip:secret-of-other-host": hostlib.ErrForbidden,
		"kmip:cert-1":               hostlib.ErrWrongType,
	} {
		if _, err := c.Fetch(context.Background(), ref); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", ref, err, want)
		}
	}
	if _, err := kmipClient(t, addr, ca, ca, "host-2").Fetch(context.Background(), "kmip:sym-1"); !errors.Is(err, hostlib.ErrForbidden) {
		t.Errorf("other host's certificate: %v", err)
	}
	rogue := newCA(t, "rogue-ca")
	if _, err := kmipClient(t, addr, ca, rogue, "host-1").Fetch(context.Background(), "kmip:sym-1"); !errors.Is(err, hostlib.ErrUnauthorized) {
		t.Errorf("certificate from an unknown CA: %v", err)
	}
	if _, err := kmipClient(t, addr, rogue, ca, "host-1").Fetch(context.Background(), "kmip:sym-1"); err == nil || errors.Is(err, hostlib.ErrUnavailable) {
		t.Errorf("untrusted server must fail at once, not be retried: %v", err)
	}
}

func TestKMIPServerDownIsRetriedThenUnavailable(t *testing.T) {
	ca := newCA(t, "kw-test-ca")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := kmipClient(t, addr, ca, ca, "host-1")
	start := time.Now()
	if _, err := c.Fetch(context.Background(), "kmip:sym-1"); !errors.Is(err, hostlib.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("retries took too long")
	}
}

func TestKMIPReconnectsAfterServerRestart(t *testing.T) {
	ca := newCA(t, "kw-test-ca")
	c := kmipClient(t, startKMIPServer(t, ca), ca, ca, "host-1")
	s, err := c.Fetch(context.Background(), "kmip:sym-1")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.kmip.client.Close() // the connection drops under the client
	s, err = c.Fetch(context.Background(), "kmip:sym-1")
	if err != nil {
		t.Fatalf("after the connection dropped: %v", err)
	}
	s.Close()
}

func TestKMIPConfigErrorsAreImmediate(t *testing.T) {
	ca := newCA(t, "kw-test-ca")
	cert, key, _ := ca.issue("host-1", false)
	for name, cfg := range map[string]KMIPConfig{
		"no cert":      {Addr: "127.0.0.1:1"},
		"missing cert": {Addr: "127.0.0.1:1", CertFile: "/nonexistent.crt", KeyFile: key},
		"key mismatch": {Addr: "127.0.0.1:1", CertFile: cert, KeyFile: ca.caFile()},
		"missing ca":   {Addr: "127.0.0.1:1", CertFile: cert, KeyFile: key, CAFile: "/nonexistent.pem"},
	} {
		if _, err := New(Config{KMIP: &cfg}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
