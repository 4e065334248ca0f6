package kmip

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"

	"github.com/keywarden/keywarden/kmip/pki"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/tests/testserver"
)

// connEvents records ObserveConn.
type connEvents struct {
	mu  sync.Mutex
	got map[string]int // "event/reason" → count
}

func (c *connEvents) observe(event, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = map[string]int{}
	}
	c.got[event+"/"+reason]++
}

func (c *connEvents) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[key]
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rawFrom(t *testing.T, src, addr string) net.Conn { return testserver.DialFrom(t, src, addr) }

// closedSoon asserts the server closes c without sending anything.
func closedSoon(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 16))
	var ne net.Error
	if n != 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
	}
}

// TestConnectionCaps: beyond the per-source cap, then the global cap, a
// connection is closed at once (no TLS, nothing sent) and counted; when the
// holders go, the same sources are served again.
func TestConnectionCaps(t *testing.T) {
	var ev connEvents
	e := newEnv(t, func(c *Config) {
		c.MaxConns, c.MaxConnsPerSource, c.ObserveConn = 3, 2, ev.observe
		c.HandshakeTimeout = time.Minute // the holders must not time out here
	})
	a1 := rawFrom(t, "127.0.0.1", e.addr)
	a2 := rawFrom(t, "127.0.0.1", e.addr)
	waitFor(t, "two connections", func() bool { return e.srv.OpenConns() == 2 })
	closedSoon(t, rawFrom(t, "127.0.0.1", e.addr))
	waitFor(t, "one per-source refusal", func() bool { return ev.count("refused/max_connections_per_source") == 1 })
	b1 := rawFrom(t, "127.0.0.2", e.addr)
	waitFor(t, "three connections", func() bool { return e.srv.OpenConns() == 3 })
	closedSoon(t, rawFrom(t, "127.0.0.3", e.addr))
	waitFor(t, "one global refusal", func() bool { return ev.count("refused/max_connections") == 1 })
	for _, c := range []net.Conn{a1, a2, b1} {
		c.Close()
	}
	waitFor(t, "the holders to go", func() bool { return e.srv.OpenConns() == 0 })
	c := e.dial("caps")
	c.do(op{op: kmip14.OperationDiscoverVersions}).ok(0)
	t.Logf("caps 3 total / 2 per source: %v", ev.got)
}

// TestHandshakeDeadlineAndLogLimit: a silent connection is closed at the
// handshake deadline; failed handshakes are each counted but logged once
// per interval, with the number held back.
func TestHandshakeDeadlineAndLogLimit(t *testing.T) {
	var ev connEvents
	var logBuf testserver.SyncBuffer
	e := newEnv(t, func(c *Config) {
		c.HandshakeTimeout, c.ObserveConn = 300*time.Millisecond, ev.observe
		c.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	})
	silent := rawFrom(t, "127.0.0.1", e.addr)
	start := time.Now()
	closedSoon(t, silent)
	t.Logf("a silent connection was closed after %v (handshake_timeout 300ms)", time.Since(start).Round(time.Millisecond))
	waitFor(t, "the timeout counted", func() bool { return ev.count("handshake_failed/timeout") == 1 })

	const garbage = 50
	for range garbage {
		c := rawFrom(t, "127.0.0.1", e.addr)
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		io.Copy(io.Discard, c)
		c.Close()
	}
	// And one that presents no client certificate.
	tc, err := tls.Dial("tcp", e.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err == nil {
		tc.Close()
	}
	waitFor(t, "every failure counted", func() bool {
		return ev.count("handshake_failed/protocol") == garbage && ev.count("handshake_failed/certificate") == 1
	})
	if n := strings.Count(logBuf.String(), "TLS handshake failed"); n != 1 {
		t.Fatalf("%d log lines for %d failed handshakes within %v, want 1:\n%s", n, garbage+2, logEvery, logBuf.String())
	}
	// The server still serves.
	e.dial("hs").do(op{op: kmip14.OperationDiscoverVersions}).ok(0)
}

func TestRateLog(t *testing.T) {
	var r rateLog
	t0 := time.Unix(1000, 0)
	if n, ok := r.allow(t0); !ok || n != 0 {
		t.Fatal("first line held back")
	}
	for i := range 5 {
		if _, ok := r.allow(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatal("a line within the interval got through")
		}
	}
	if n, ok := r.allow(t0.Add(logEvery)); !ok || n != 5 {
		t.Fatalf("after the interval: %d, %v; want 5 held back, logged", n, ok)
	}
}

// flakyListener fails Accept with EMFILE a number of times before passing
// through: a fake, because exhausting the file table of the test process
// would break every other test running in it. The real exhaustion, against
// the binary with a 256-descriptor limit, is tests/kmip TestFlood.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestAcceptErrorsDoNotStopTheListener: Serve backs off and keeps
// accepting through accept errors.
func TestAcceptErrorsDoNotStopTheListener(t *testing.T) {
	var ev connEvents
	e := newEnv(t, func(c *Config) { c.ObserveConn = ev.observe })
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyListener{Listener: inner, fails: 8}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(l) }()
	e.addr = inner.Addr().String()
	e.dial("acc").do(op{op: kmip14.OperationDiscoverVersions}).ok(0)
	waitFor(t, "8 accept errors counted", func() bool { return ev.count("accept_error/EMFILE") == 8 })
	select {
	case err := <-done:
		t.Fatalf("Serve returned: %v", err)
	default:
	}
}

// TestShedOnEMFILE: when accept runs out of descriptors, the 16 oldest
// connections still in their handshake are closed to give theirs back;
// newer ones and authenticated ones stay.
func TestShedOnEMFILE(t *testing.T) {
	var ev connEvents
	e := newEnv(t, func(c *Config) { c.ObserveConn, c.HandshakeTimeout = ev.observe, time.Minute })
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyListener{Listener: inner}
	go e.srv.Serve(l)
	e.addr = inner.Addr().String()
	served := e.dial("shed") // authenticated: never shed
	served.do(op{op: kmip14.OperationDiscoverVersions}).ok(0)
	var silent []net.Conn
	for range 20 {
		silent = append(silent, rawFrom(t, "127.0.0.1", e.addr))
		time.Sleep(5 * time.Millisecond) // accepted in this order
	}
	waitFor(t, "21 connections", func() bool { return e.srv.OpenConns() == 21 })
	l.mu.Lock()
	l.fails = 1
	l.mu.Unlock()
	last := rawFrom(t, "127.0.0.1", e.addr) // accepted, then the next accept fails
	waitFor(t, "16 shed", func() bool { return ev.count("handshake_failed/shed") == 16 })
	for _, c := range silent[:16] {
		closedSoon(t, c)
	}
	waitFor(t, "6 left", func() bool { return e.srv.OpenConns() == 6 })
	served.do(op{op: kmip14.OperationDiscoverVersions}).ok(0)
	last.Close()
}

// TestBatchItemCap: a request over the cap is answered with one failed
// item (Operation Failed, Invalid Message) before any item runs, and the
// connection goes on serving.
func TestBatchItemCap(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBatchItems = 4 })
	c := e.dial("batch")
	ops := func(n int) []op {
		out := make([]op, n)
		for i := range out {
			out[i] = createAES(c.ver, 256)
		}
		return out
	}
	r := c.do(ops(5)...)
	if len(r.items) != 1 {
		t.Fatalf("%d items answered, want 1", len(r.items))
	}
	msg := r.failed(0, uint32(kmip14.ResultReasonInvalidMessage))
	if !strings.Contains(msg, "at most 4") {
		t.Fatalf("message %q does not name the cap", msg)
	}
	if _, total, err := e.svc.ListSecrets(t.Context(), who("batch"), kms.ListQuery{Limit: 10}); err != nil || total != 0 {
		t.Fatalf("items of a refused batch ran: %d secrets, %v", total, err)
	}
	r = c.do(ops(4)...)
	for i := range 4 {
		r.ok(i)
	}
}

// TestBatchItemCapDefault: 15,000 items in one message are refused under
// the default cap of 64.
func TestBatchItemCapDefault(t *testing.T) {
	e := newEnv(t)
	c := e.dial("batch")
	ops := make([]op, 15000)
	for i := range ops {
		ops[i] = op{op: kmip14.OperationDiscoverVersions}
	}
	r := c.do(ops...)
	if len(r.items) != 1 || !strings.Contains(r.failed(0, uint32(kmip14.ResultReasonInvalidMessage)), "15000 batch items") {
		t.Fatalf("answered %d items", len(r.items))
	}
	c.do(op{op: kmip14.OperationDiscoverVersions}).ok(0)
}

// crlOf signs a CRL listing serials with the CA in dir.
func crlOf(t *testing.T, ca *x509.Certificate, dir string, serials ...*big.Int) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca, loadCAKey(t, dir).(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// TestRevocation: a CRL of Keywarden's CA, then one of a configured other
// CA: each refuses its own certificates in the handshake (counted as
// revoked) and closes their open connections; the other CA's clients and
// the other CRL are untouched; a CRL no trusted CA signed is refused.
func TestRevocation(t *testing.T) {
	var ev connEvents
	foreignDir := t.TempDir()
	foreign, _, err := pki.LoadOrCreate(foreignDir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := NewIdentities(sharedCA(t).Certificate(), []*x509.Certificate{foreign.Certificate()},
		[]Mapping{{OU: "storage", Project: "storage-team", Roles: []string{"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Identities, c.ObserveConn = ids, ev.observe })
	alice := clientCert(t, "rev", "alice", "admin")
	fPEM, fKey, err := foreign.IssueClient(pki.ClientRequest{Project: "x", User: "svc", Roles: []string{"storage"}, KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := tls.X509KeyPair(fPEM, fKey)
	dial := func(cert tls.Certificate) error {
		c, err := tls.Dial("tcp", e.addr, e.clientTLS(cert))
		if err != nil {
			return err
		}
		defer c.Close()
		cl := &client{t: t, c: c, ver: version{1, 4}}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(requestMsg(t, cl.ver, nil, op{op: kmip14.OperationDiscoverVersions}))
		_, err = readMessage(c)
		return err
	}
	held, err := tls.Dial("tcp", e.addr, e.clientTLS(alice))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	hc := &client{t: t, c: held, ver: version{1, 4}}
	hc.do(op{op: kmip14.OperationDiscoverVersions}).ok(0)

	aliceLeaf, _ := x509.ParseCertificate(alice.Certificate[0])
	if err := ids.SetCRL(crlOf(t, sharedCA(t).Certificate(), sharedCA(t).Dir(), aliceLeaf.SerialNumber)); err != nil {
		t.Fatal(err)
	}
	if err := dial(alice); err == nil {
		t.Fatal("a revoked certificate was served")
	}
	waitFor(t, "a revoked handshake counted", func() bool { return ev.count("handshake_failed/revoked") >= 1 })
	held.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Fatal("the revoked certificate's open connection was not closed")
	}
	if err := dial(svc); err != nil {
		t.Fatalf("the other CA's client after our CRL: %v", err)
	}
	if err := dial(clientCert(t, "rev", "bob", "admin")); err != nil {
		t.Fatalf("another client of our CA: %v", err)
	}

	// The other CA's CRL: its client goes, ours stays revoked.
	svcLeaf, _ := x509.ParseCertificate(svc.Certificate[0])
	if err := ids.SetCRL(crlOf(t, foreign.Certificate(), foreignDir, svcLeaf.SerialNumber)); err != nil {
		t.Fatal(err)
	}
	if err := dial(svc); err == nil {
		t.Fatal("a certificate the other CA revoked was served")
	}
	if err := dial(alice); err == nil {
		t.Fatal("the other CA's CRL undid ours")
	}
	if ids.RevokedCount() != 2 {
		t.Fatalf("revoked count %d", ids.RevokedCount())
	}
	// A CRL of a CA nobody trusts, and garbage.
	strangerDir := t.TempDir()
	stranger, _, _ := pki.LoadOrCreate(strangerDir)
	if err := ids.SetCRL(crlOf(t, stranger.Certificate(), strangerDir)); err == nil {
		t.Fatal("a CRL of an untrusted CA was taken")
	}
	if err := ids.SetCRL([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")); err == nil {
		t.Fatal("a garbage CRL was taken")
	}
}
