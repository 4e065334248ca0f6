package kmip

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// expectClose asserts the server closes the connection without sending
// anything (within a few seconds: never a hang).
func expectClose(t *testing.T, c *tls.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 64))
	if n != 0 || err == nil {
		t.Fatalf("read %d bytes (%v), want a clean close", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server hung instead of closing")
	}
}

func frameHeader(tag ttlv.Tag, typ ttlv.Type, n uint32) []byte {
	b := []byte{byte(tag >> 16), byte(tag >> 8), byte(tag), byte(typ), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[4:], n)
	return b
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReadTimeout = 500 * time.Millisecond })
	valid := requestMsg(t, version{1, 4}, nil, op{op: kmip14.OperationDiscoverVersions})

	t.Run("4GiB length header", func(t *testing.T) {
		c := e.dial("bad")
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		c.c.Write(frameHeader(tagRequestMessage, ttlv.TypeStructure, 0xFFFFFFF8))
		r := decodeResp(t, mustRead(t, c))
		msg := r.failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		t.Log(msg)
		expectClose(t, c.c)
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if after.TotalAlloc-before.TotalAlloc > 64<<20 {
			t.Fatalf("allocated %d bytes for a refused message", after.TotalAlloc-before.TotalAlloc)
		}
	})
	t.Run("over the limit, version kept", func(t *testing.T) {
		c := e.dial("bad")
		big := requestMsg(t, version{2, 0}, nil, op{op: kmip14.OperationDiscoverVersions})
		binary.BigEndian.PutUint32(big[4:], 2<<20)
		c.c.Write(big)
		r := decodeResp(t, mustRead(t, c))
		r.failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		if r.version() != (version{2, 0}) {
			t.Fatalf("answered in %v", r.version())
		}
		expectClose(t, c.c)
	})
	t.Run("truncated, client closes", func(t *testing.T) {
		c := e.dial("bad")
		c.c.Write(valid[:len(valid)-16])
		c.c.CloseWrite()
		r := decodeResp(t, mustRead(t, c))
		r.failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		if r.version() != (version{1, 4}) {
			t.Fatalf("answered in %v", r.version())
		}
		expectClose(t, c.c)
	})
	t.Run("truncated, client stalls", func(t *testing.T) {
		c := e.dial("bad")
		start := time.Now()
		c.c.Write(valid[:len(valid)-16])
		decodeResp(t, mustRead(t, c)).failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("answered after %v", d)
		}
		expectClose(t, c.c)
	})
	t.Run("inner length overruns", func(t *testing.T) {
		c := e.dial("bad")
		b := bytes.Clone(valid)
		binary.BigEndian.PutUint32(b[12:], 0x1000) // the Request Header claims 4 KiB
		decodeResp(t, c.roundTrip(b)).failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		// The connection stays usable: the frame was intact.
		decodeResp(t, c.roundTrip(valid)).ok(0)
	})
	t.Run("bad item type and length", func(t *testing.T) {
		c := e.dial("bad")
		b := bytes.Clone(valid)
		b[8+3] = 0x0F // the Request Header's type byte
		decodeResp(t, c.roundTrip(b)).failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		b = bytes.Clone(valid)
		// Protocol Version Major: an Integer of length 5.
		i := bytes.Index(b, []byte{0x42, 0x00, 0x6a, 0x02})
		b[i+7] = 5
		decodeResp(t, c.roundTrip(b)).failed(0, uint32(kmip14.ResultReasonInvalidMessage))
	})
	t.Run("wrong item types", func(t *testing.T) {
		c := e.dial("bad")
		// Batch Count as text: the header is unusable.
		msg, _ := ttlv.Marshal(st(tagRequestMessage,
			st(tagRequestHeader, st(kmip14.TagProtocolVersion, v(kmip14.TagProtocolVersionMajor, 1), v(kmip14.TagProtocolVersionMinor, 4)),
				v(kmip14.TagBatchCount, "one")),
			st(tagBatchItem, v(kmip14.TagOperation, kmip14.OperationDiscoverVersions), st(tagRequestPayload))))
		decodeResp(t, c.roundTrip(msg)).failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		// Operation as an Integer: that item is malformed.
		msg = bytes.Clone(valid)
		msg[bytes.Index(msg, []byte{0x42, 0x00, 0x5c, 0x05})+3] = byte(ttlv.TypeInteger)
		decodeResp(t, c.roundTrip(msg)).failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		// A Unique Identifier as an Integer: a bad field (1.x), a bad data
		// type (2.x, where an Integer index is otherwise unsupported).
		c.do(byID(kmip14.OperationGet, "", v(tagUniqueIdentifier, 7))).failed(0, uint32(kmip14.ResultReasonInvalidField))
		c.do(byID(kmip14.OperationRevoke, "x", st(kmip14.TagRevocationReason, v(kmip14.TagRevocationReasonCode, "compromise")))).
			failed(0, uint32(kmip14.ResultReasonInvalidField))
		c.ver = version{2, 0}
		c.do(byID(kmip14.OperationActivate, "", v(tagUniqueIdentifier, []byte("id")))).failed(0, uint32(kmip20.ResultReasonInvalidDataType))
	})
	t.Run("boolean other than 0 or 1", func(t *testing.T) {
		c := e.dial("bad")
		// A Hash with Init Indicator true, then the same with its value 2:
		// §9.1.1.4 allows only 0 and 1, and a 2 taken as true would be
		// stored as another value than was sent.
		hash := op{op: kmip14.OperationHash, payload: []ttlv.Value{
			st(kmip14.TagCryptographicParameters, v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256)),
			v(kmip14.TagData, []byte("d")), v(kmip14.TagInitIndicator, true)}}
		msg := requestMsg(t, c.ver, nil, hash)
		decodeResp(t, c.roundTrip(msg)).ok(0)
		tag := kmip14.TagInitIndicator
		i := bytes.Index(msg, []byte{byte(tag >> 16), byte(tag >> 8), byte(tag), byte(ttlv.TypeBoolean)})
		if i < 0 {
			t.Fatal("no Init Indicator in the request")
		}
		msg[i+15] = 2
		decodeResp(t, c.roundTrip(msg)).failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		if err := check(msg[8:], 0); err != errBadBool {
			t.Fatalf("check: %v", err)
		}
	})
	t.Run("unknown tags", func(t *testing.T) {
		c := e.dial("bad")
		unknown := v(ttlv.Tag(0x42ff01), 1)
		// In a payload: that item fails, the others run.
		cont := []ttlv.Value{v(kmip14.TagBatchErrorContinuationOption, kmip14.BatchErrorContinuationOptionContinue)}
		r := decodeResp(t, c.roundTrip(requestMsg(t, c.ver, cont,
			op{op: kmip14.OperationDiscoverVersions}, op{op: kmip14.OperationDiscoverVersions, payload: []ttlv.Value{unknown}},
			op{op: kmip14.OperationDiscoverVersions})))
		r.ok(0)
		r.failed(1, uint32(kmip14.ResultReasonInvalidMessage))
		r.ok(2)
		c.ver = version{2, 1}
		c.do(op{op: kmip14.OperationQuery, payload: []ttlv.Value{unknown}}).failed(0, uint32(kmip20.ResultReasonUnknownTag))
		// In the header: the whole message fails.
		msg := requestMsg(t, version{1, 4}, []ttlv.Value{unknown}, op{op: kmip14.OperationDiscoverVersions})
		decodeResp(t, c.roundTrip(msg)).failed(0, uint32(kmip14.ResultReasonInvalidMessage))
		// Extension tags (0x54xxxx) are legal and ignored where not used.
		c.ver = version{1, 4}
		c.do(op{op: kmip14.OperationDiscoverVersions, payload: []ttlv.Value{v(ttlv.Tag(0x540001), "ext")}}).ok(0)
	})
	t.Run("versions not served", func(t *testing.T) {
		c := e.dial("bad")
		for _, tc := range []struct {
			ask, answer version
			reason      uint32
		}{
			{version{3, 0}, version{2, 1}, uint32(kmip20.ResultReasonUnsupportedProtocolVersion)},
			{version{2, 7}, version{2, 1}, uint32(kmip20.ResultReasonUnsupportedProtocolVersion)},
			{version{1, 9}, version{1, 4}, uint32(kmip14.ResultReasonInvalidMessage)},
			{version{0, 9}, version{1, 0}, uint32(kmip14.ResultReasonInvalidMessage)},
		} {
			c.ver = tc.ask
			r := decodeResp(t, c.roundTrip(requestMsg(t, tc.ask, nil, op{op: kmip14.OperationDiscoverVersions})))
			if r.version() != tc.answer {
				t.Fatalf("asked %v, answered in %v", tc.ask, r.version())
			}
			r.failed(0, tc.reason)
			if get(r.item(0), kmip14.TagOperation) != nil {
				t.Fatal("a message-level failure names an operation")
			}
		}
	})
	t.Run("batch count mismatch", func(t *testing.T) {
		c := e.dial("bad")
		msg := requestMsg(t, version{1, 2}, nil, op{op: kmip14.OperationDiscoverVersions}, op{op: kmip14.OperationDiscoverVersions})
		binary.BigEndian.PutUint32(msg[bytes.Index(msg, []byte{0x42, 0x00, 0x0d, 0x02})+8:], 5)
		decodeResp(t, c.roundTrip(msg)).failed(0, uint32(kmip14.ResultReasonInvalidMessage))
	})
	t.Run("not TTLV", func(t *testing.T) {
		for _, junk := range [][]byte{
			[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
			{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5},
			frameHeader(tagResponseMessage, ttlv.TypeStructure, 8), // a response is not a request
			frameHeader(tagRequestMessage, ttlv.TypeInteger, 4),
		} {
			c := e.dial("bad")
			c.c.Write(junk)
			expectClose(t, c.c)
		}
	})
	t.Run("response header per version", func(t *testing.T) {
		c := e.dial("bad")
		corr := []ttlv.Value{v(kmip14.TagClientCorrelationValue, "corr-1")}
		for _, ver := range allVersions {
			r := decodeResp(t, c.roundTrip(requestMsg(t, ver, corr, op{op: kmip14.OperationDiscoverVersions})))
			var tags []ttlv.Tag
			for _, f := range r.header.Value.(ttlv.Values) {
				tags = append(tags, f.Tag)
			}
			want := []ttlv.Tag{kmip14.TagProtocolVersion, kmip14.TagTimeStamp, kmip14.TagBatchCount}
			if ver.atLeast(1, 4) {
				want = []ttlv.Tag{kmip14.TagProtocolVersion, kmip14.TagTimeStamp, kmip14.TagClientCorrelationValue, kmip14.TagBatchCount}
			}
			if fmt.Sprint(tags) != fmt.Sprint(want) || r.version() != ver {
				t.Fatalf("%v: header %v", ver, tags)
			}
		}
	})
}

func mustRead(t *testing.T, c *client) []byte {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := readMessage(c.c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPipelining: many requests in flight on one connection are answered
// in order, and concurrently processed.
func TestPipelining(t *testing.T) {
	e := newEnv(t)
	c := e.dial("pipe")
	const n = 200
	go func() {
		for i := range n {
			o := createAES(c.ver, 128)
			o.id = binary.BigEndian.AppendUint32(nil, uint32(i))
			c.c.Write(requestMsg(t, c.ver, nil, o))
		}
	}()
	start := time.Now()
	for i := range n {
		r := decodeResp(t, mustRead(t, c))
		r.ok(0)
		if id := get(r.item(0), kmip14.TagUniqueBatchItemID).([]byte); binary.BigEndian.Uint32(id) != uint32(i) {
			t.Fatalf("response %d answers request %d", i, binary.BigEndian.Uint32(id))
		}
	}
	t.Logf("%d pipelined creates in %v", n, time.Since(start))
}

func TestManyConnections(t *testing.T) {
	e := newEnv(t)
	sec, err := e.svc.GenerateSecret(context.Background(), who("many"), kms.GenerateRequest{
		CreateRequest: kms.CreateRequest{Type: kms.Symmetric, BitLength: 256}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.dial("many")
			for range 20 {
				c.do(byID(kmip14.OperationGet, sec.ID)).ok(0)
			}
		}()
	}
	wg.Wait()
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := e.dial("idle")
	c.do(op{op: kmip14.OperationDiscoverVersions}).ok(0)
	start := time.Now()
	expectClose(t, c.c)
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// TestGracefulShutdown: requests already read are answered, then the
// connections close and no new one is accepted. Observe holds every request
// in processing until Shutdown has begun, so the test knows the server has
// read them all however loaded the machine is.
func TestGracefulShutdown(t *testing.T) {
	const n = 24 // under MaxInFlight: the reader never waits for the writer
	var read atomic.Int32
	release := make(chan struct{})
	e := newEnv(t, func(c *Config) {
		c.MaxInFlight = 2 * n
		c.Observe = func(string, string, time.Duration) {
			read.Add(1)
			<-release
		}
	})
	c := e.dial("shut")
	idle := e.dial("shut")
	var buf []byte
	for range n {
		buf = append(buf, requestMsg(t, c.ver, nil, createAES(c.ver, 256))...)
	}
	c.c.Write(buf)
	for deadline := time.Now().Add(20 * time.Second); read.Load() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server read %d of %d requests", read.Load(), n)
		}
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond) // let Shutdown stop the readers first
	close(release)
	got := 0
	for {
		c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := readMessage(c.c)
		if err != nil {
			break
		}
		decodeResp(t, b).ok(0)
		got++
	}
	if got != n {
		t.Fatalf("%d of %d answers before the close", got, n)
	}
	expectClose(t, idle.c)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := tls.Dial("tcp", e.addr, e.clientTLS(clientCert(t, "shut", "user-shut", "admin"))); err == nil {
		t.Fatal("a new connection was accepted after shutdown")
	}
}

// TestBadInputNoGrowth: thousands of bad messages leave neither memory nor
// goroutines behind.
func TestBadInputNoGrowth(t *testing.T) {
	e := newEnv(t)
	valid := requestMsg(t, version{1, 4}, nil, op{op: kmip14.OperationDiscoverVersions})
	bad := [][]byte{
		func() []byte { b := bytes.Clone(valid); binary.BigEndian.PutUint32(b[12:], 0x1000); return b }(),
		requestMsg(t, version{3, 0}, nil, op{op: kmip14.OperationDiscoverVersions}),
		requestMsg(t, version{1, 4}, nil, op{op: kmip14.OperationEncrypt}),
		requestMsg(t, version{1, 4}, nil, byID(kmip14.OperationGet, "missing")),
	}
	round := func(k int) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := e.dial("growth")
				for i := range k {
					decodeResp(t, c.roundTrip(bad[(i+w)%len(bad)]))
				}
				c.c.Close()
				// And a connection killed by a 4 GiB header.
				k := e.dial("growth")
				k.c.Write(frameHeader(tagRequestMessage, ttlv.TypeStructure, 0xFFFFFFF8))
				mustRead(t, k)
				k.c.Close()
			}()
		}
		wg.Wait()
	}
	settle := func() (uint64, int) {
		var m runtime.MemStats
		for range 3 {
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
		}
		runtime.ReadMemStats(&m)
		return m.HeapAlloc, runtime.NumGoroutine()
	}
	round(100) // warm up pools and caches
	heap0, g0 := settle()
	round(500)
	heap1, g1 := settle()
	t.Logf("heap %d → %d bytes, goroutines %d → %d", heap0, heap1, g0, g1)
	if heap1 > heap0+8<<20 {
		t.Fatalf("heap grew by %d bytes", heap1-heap0)
	}
	deadline := time.Now().Add(3 * time.Second)
	for g1 > g0+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		g1 = runtime.NumGoroutine()
	}
	if g1 > g0+2 {
		t.Fatalf("goroutines %d → %d", g0, g1)
	}
}

func TestTLSRequirements(t *testing.T) {
	e := newEnv(t)
	pool := x509.NewCertPool()
	pool.AddCert(sharedCA(t).Certificate())
	handshake := func(cfg *tls.Config) error {
		cfg.RootCAs, cfg.ServerName = pool, "127.0.0.1"
		c, err := tls.Dial("tcp", e.addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		c.Write(requestMsg(t, version{1, 4}, nil, op{op: kmip14.OperationDiscoverVersions}))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = readMessage(c)
		return err
	}
	good := clientCert(t, "tls", "user-tls", "admin")
	if err := handshake(&tls.Config{Certificates: []tls.Certificate{good}}); err != nil {
		t.Fatalf("good client refused: %v", err)
	}
	// TLS 1.2: forward-secret AEAD suites only, unless legacy suites are
	// switched on.
	tls12 := func(suite uint16) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{good}, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}
	}
	if err := handshake(tls12(tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)); err != nil {
		t.Fatalf("TLS 1.2 with ECDHE-RSA-AES128-GCM: %v", err)
	}
	legacy := []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}
	for _, suite := range legacy {
		if err := handshake(tls12(suite)); err == nil {
			t.Fatalf("TLS 1.2 with %s accepted by default", tls.CipherSuiteName(suite))
		}
	}
	old := newEnv(t, func(c *Config) { c.TLS.LegacyCipherSuites = true })
	e.addr, old.addr = old.addr, e.addr
	for _, suite := range legacy {
		if err := handshake(tls12(suite)); err != nil {
			t.Fatalf("TLS 1.2 with %s and legacy suites on: %v", tls.CipherSuiteName(suite), err)
		}
	}
	e.addr = old.addr
	for name, cfg := range map[string]*tls.Config{
		"no certificate": {},
		"TLS 1.1":        {Certificates: []tls.Certificate{good}, MaxVersion: tls.VersionTLS11},
		"unknown CA":     {Certificates: []tls.Certificate{selfSigned(t, "stranger", x509.ExtKeyUsageClientAuth)}},
		"no clientAuth":  {Certificates: []tls.Certificate{caSigned(t, "tls", x509.ExtKeyUsageServerAuth)}},
		"no project (O)": {Certificates: []tls.Certificate{caSigned(t, "", x509.ExtKeyUsageClientAuth)}},
	} {
		if err := handshake(cfg); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
}

// selfSigned makes a client certificate no configured CA issued.
func selfSigned(t *testing.T, cn string, eku x509.ExtKeyUsage) tls.Certificate {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: []string{"p"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{eku},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// caSigned makes a certificate of the test CA with chosen subject and EKU,
// bypassing the pki package's checks.
func caSigned(t *testing.T, project string, eku x509.ExtKeyUsage) tls.Certificate {
	ca := sharedCA(t)
	caKey := loadCAKey(t, ca.Dir())
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	subj := pkix.Name{CommonName: "u"}
	if project != "" {
		subj.Organization = []string{project}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: subj, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{eku}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate(), &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}
