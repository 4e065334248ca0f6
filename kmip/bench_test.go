package kmip

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gk "github.com/gemalto/kmip-go"
	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// Benchmarks (see docs/BENCHMARKS.md, KMIP section):
//
//	go test ./kmip -run '^$' -bench . -benchtime 3s
//
// BenchmarkCodec compares gemalto's reflective codec with the hand-written
// path on the messages of the hot operations. BenchmarkServer* measure the
// whole server over mutual TLS with persistent connections; the
// "reflective" variants add gemalto's codec cost to every message, which is
// what the server would pay without the fast path.

const benchKeyID = "0f0e0d0c-0b0a-4908-8706-050403020100"

func gkGetResponse(key []byte) gk.ResponseMessage {
	return gk.ResponseMessage{
		ResponseHeader: gk.ResponseHeader{ProtocolVersion: gk.ProtocolVersion{ProtocolVersionMajor: 1, ProtocolVersionMinor: 4},
			TimeStamp: time.Unix(1700000000, 0), BatchCount: 1},
		BatchItem: []gk.ResponseBatchItem{{Operation: kmip14.OperationGet, ResultStatus: kmip14.ResultStatusSuccess,
			ResponsePayload: gk.GetResponsePayload{ObjectType: kmip14.ObjectTypeSymmetricKey, UniqueIdentifier: benchKeyID,
				SymmetricKey: &gk.SymmetricKey{KeyBlock: gk.KeyBlock{KeyFormatType: kmip14.KeyFormatTypeRaw,
					KeyValue: &gk.KeyValue{KeyMaterial: key}, CryptographicAlgorithm: kmip14.CryptographicAlgorithmAES,
					CryptographicLength: 8 * len(key)}}}}},
	}
}

func gkCreateGetResponse(key []byte) gk.ResponseMessage {
	m := gkGetResponse(key)
	m.ResponseHeader.BatchCount = 2
	m.BatchItem = append([]gk.ResponseBatchItem{{Operation: kmip14.OperationCreate, ResultStatus: kmip14.ResultStatusSuccess,
		ResponsePayload: gk.CreateResponsePayload{ObjectType: kmip14.ObjectTypeSymmetricKey, UniqueIdentifier: benchKeyID}}},
		m.BatchItem...)
	return m
}

// reflectiveCodec is what a request costs through gemalto's codec: decode
// the message and each typed payload, encode a typed response of the same
// shape.
func reflectiveCodec(resp gk.ResponseMessage) func([]byte) {
	return func(msg []byte) {
		var m gk.RequestMessage
		if err := ttlv.Unmarshal(msg, &m); err != nil {
			panic(err)
		}
		for _, bi := range m.BatchItem {
			raw, _ := bi.RequestPayload.(ttlv.TTLV)
			switch bi.Operation {
			case kmip14.OperationGet:
				var p gk.GetRequestPayload
				ttlv.Unmarshal(raw, &p)
			case kmip14.OperationCreate:
				var p gk.CreateRequestPayload
				ttlv.Unmarshal(raw, &p)
			}
		}
		if _, err := ttlv.Marshal(resp); err != nil {
			panic(err)
		}
	}
}

func BenchmarkCodec(b *testing.B) {
	key := bytes.Repeat([]byte{1}, 32)
	getReq := requestMsg(b, version{1, 4}, nil, byID(kmip14.OperationGet, benchKeyID))
	createReq := requestMsg(b, version{1, 4}, nil, createAES(version{1, 4}, 256))
	sec := &kms.Secret{ID: benchKeyID, Type: kms.Symmetric, Algorithm: "aes", BitLength: 256}
	now := time.Unix(1700000000, 0)

	b.Run("gemalto/decode-get-request", func(b *testing.B) {
		for b.Loop() {
			var m gk.RequestMessage
			if err := ttlv.Unmarshal(getReq, &m); err != nil {
				b.Fatal(err)
			}
			var p gk.GetRequestPayload
			ttlv.Unmarshal(m.BatchItem[0].RequestPayload.(ttlv.TTLV), &p)
		}
	})
	b.Run("fast/decode-get-request", func(b *testing.B) {
		c := opCtx{ver: version{1, 4}}
		for b.Loop() {
			_, items, perr := parseRequest(getReq, 0)
			if perr != nil {
				b.Fatal(perr)
			}
			if _, perr := c.uid(items[0].payload); perr != nil {
				b.Fatal(perr)
			}
		}
	})
	b.Run("gemalto/decode-create-request", func(b *testing.B) {
		for b.Loop() {
			var m gk.RequestMessage
			if err := ttlv.Unmarshal(createReq, &m); err != nil {
				b.Fatal(err)
			}
			var p gk.CreateRequestPayload
			ttlv.Unmarshal(m.BatchItem[0].RequestPayload.(ttlv.TTLV), &p)
		}
	})
	b.Run("fast/decode-create-request", func(b *testing.B) {
		c := opCtx{ver: version{1, 4}, now: now}
		for b.Loop() {
			_, items, perr := parseRequest(createReq, 0)
			if perr != nil {
				b.Fatal(perr)
			}
			attrs, _ := requestAttrs(items[0].payload)
			if _, perr := newObjectFrom(&c, attrs); perr != nil {
				b.Fatal(perr)
			}
		}
	})
	b.Run("gemalto/encode-get-response", func(b *testing.B) {
		m := gkGetResponse(key)
		for b.Loop() {
			if _, err := ttlv.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast/encode-get-response", func(b *testing.B) {
		w := &writer{}
		for b.Loop() {
			w.b = w.b[:0]
			var r response
			r.start(w, version{1, 4}, now, nil, 0)
			r.beginItem(true, uint32(kmip14.OperationGet), nil, false)
			w.begin(tagResponsePayload)
			w.enum(tagObjectType, uint32(kmip14.ObjectTypeSymmetricKey))
			w.text(tagUniqueIdentifier, sec.ID)
			writeObject(w, sec, key, 0)
			w.end()
			r.endItem()
			r.finish()
		}
	})
}

// benchEnv is a server with one AES-256 key for project "bench".
func benchEnv(b *testing.B, reflective bool, resp gk.ResponseMessage) (*env, string) {
	e := newEnv(b)
	if reflective {
		e.srv.codecHook = reflectiveCodec(resp)
	}
	sec, err := e.svc.GenerateSecret(context.Background(), who("bench"), kms.GenerateRequest{
		CreateRequest: kms.CreateRequest{Type: kms.Symmetric, BitLength: 256}})
	if err != nil {
		b.Fatal(err)
	}
	return e, sec.ID
}

// rawConn is a minimal client: fixed request bytes out, responses read into
// one buffer, so the client spends little of the two cores.
type rawConn struct {
	c   *tls.Conn
	buf []byte
}

func (e *env) rawDial(b *testing.B) *rawConn {
	c, err := tls.Dial("tcp", e.addr, e.clientTLS(clientCert(b, "bench", "user-bench", "admin")))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &rawConn{c: c, buf: make([]byte, 4096)}
}

var statusOK = []byte{0x42, 0x00, 0x7f, 0x05, 0, 0, 0, 4, 0, 0, 0, 0} // Result Status: Success

// read reads one response and checks its first batch item succeeded.
func (r *rawConn) read() error {
	if _, err := io.ReadFull(r.c, r.buf[:8]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(r.buf[4:8]))
	if 8+n > len(r.buf) {
		r.buf = make([]byte, 8+n)
	}
	if _, err := io.ReadFull(r.c, r.buf[8:8+n]); err != nil {
		return err
	}
	if !bytes.Contains(r.buf[:8+n], statusOK) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func benchGet(b *testing.B, conns int, reflective bool) {
	e, id := benchEnv(b, reflective, gkGetResponse(bytes.Repeat([]byte{1}, 32)))
	req := requestMsg(b, version{1, 4}, nil, byID(kmip14.OperationGet, id))
	runConns(b, e, conns, req)
}

// runConns sends req b.N times over conns persistent connections, each
// waiting for its answer, and reports ops/s and CPU per operation.
func runConns(b *testing.B, e *env, conns int, req []byte) {
	cs := make([]*rawConn, conns)
	for i := range cs {
		cs[i] = e.rawDial(b)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := c.c.Write(req); err != nil {
					b.Error(err)
					return
				}
				if err := c.read(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	reportCPU(b, cpu0)
}

// cpuTime is the CPU time this process (server and client) has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds CPU microseconds per operation (client included): a
// figure other load on the machine hardly moves, unlike ops/s.
func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(cpuTime()-since)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

func BenchmarkServerGet16Conns(b *testing.B)           { benchGet(b, 16, false) }
func BenchmarkServerGet16ConnsReflective(b *testing.B) { benchGet(b, 16, true) }
func BenchmarkServerGet1Conn(b *testing.B)             { benchGet(b, 1, false) }

// benchCreateGet: one connection, each message a batch Create (AES-256)
// then Get through the ID Placeholder; window messages in flight.
func benchCreateGet(b *testing.B, window int, reflective bool) {
	e, _ := benchEnv(b, reflective, gkCreateGetResponse(bytes.Repeat([]byte{1}, 32)))
	req := requestMsg(b, version{1, 4}, nil, createAES(version{1, 4}, 256), byID(kmip14.OperationGet, ""))
	c := e.rawDial(b)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	// A writer keeps up to window messages unanswered; the loop below reads
	// the answers (in order) and opens the window again.
	var inflight atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range b.N {
			for inflight.Load() >= int64(window) {
				time.Sleep(20 * time.Microsecond)
			}
			inflight.Add(1)
			if _, err := c.c.Write(req); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	// Count answers to release the window.
	for range b.N {
		if err := c.read(); err != nil {
			b.Fatal(err)
		}
		inflight.Add(-1)
	}
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
	reportCPU(b, cpu0)
}

func BenchmarkServerCreateGetPipelined(b *testing.B)           { benchCreateGet(b, 64, false) }
func BenchmarkServerCreateGetPipelinedReflective(b *testing.B) { benchCreateGet(b, 64, true) }
func BenchmarkServerCreateGetSequential(b *testing.B)          { benchCreateGet(b, 1, false) }
