package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// The KMIP workloads speak through github.com/ovh/kmip-go, a KMIP
// implementation independent of the server's: its client negotiates the
// version and its encoder builds every request. The hot loop sends those
// bytes over a persistent TLS connection, several in flight when asked
// (the ovh client has one request at a time), and checks each answer with a
// scan of the few fields it needs instead of decoding it whole, so that the
// load generator costs little beside the server it shares the CPU with.

// kmipTarget is a KMIP server ready to be driven.
type kmipTarget struct {
	addr       string
	tls        *tls.Config
	version    ovh.ProtocolVersion
	serverPIDs []int
}

// kmipConnect negotiates the protocol version with ovh's client (Discover
// Versions), which also checks address, certificates and suites once,
// with a clear error.
func kmipConnect(ctx context.Context, cfg Config, addr string) (kmipTarget, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return kmipTarget{}, fmt.Errorf("--target %q: want host:port for --protocol kmip", addr)
	}
	if cfg.ClientCert == "" {
		return kmipTarget{}, errors.New("--protocol kmip needs a client certificate: --cert and --key (and --ca for the server's CA)")
	}
	tc, err := clientTLS(cfg, host)
	if err != nil {
		return kmipTarget{}, err
	}
	t := kmipTarget{addr: addr, tls: tc, serverPIDs: cfg.ServerPIDs}
	// Dial first on our own: ovh's error for a refused handshake says less.
	if err := (target{addr: addr, tls: tc}).probe("KMIP server"); err != nil {
		return kmipTarget{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := kmipclient.DialContext(ctx, addr, kmipclient.WithTlsConfig(tc.Clone()))
	if err != nil {
		return kmipTarget{}, fmt.Errorf("KMIP server %s: Discover Versions: %w", addr, explainTLS(err))
	}
	t.version = c.Version()
	c.Close()
	return t, nil
}

// aesCreate is Create of an AES-256 key, as ovh's client builds it.
func aesCreate() *payloads.CreateRequestPayload {
	return &payloads.CreateRequestPayload{ObjectType: ovh.ObjectTypeSymmetricKey, TemplateAttribute: ovh.TemplateAttribute{
		Attribute: []ovh.Attribute{
			{AttributeName: ovh.AttributeNameCryptographicAlgorithm, AttributeValue: ovh.CryptographicAlgorithmAES},
			{AttributeName: ovh.AttributeNameCryptographicLength, AttributeValue: int32(256)},
			{AttributeName: ovh.AttributeNameCryptographicUsageMask,
				AttributeValue: ovh.CryptographicUsageEncrypt | ovh.CryptographicUsageDecrypt},
		}}}
}

// kmipMessage encodes a request of the payloads, one batch item each.
func (t kmipTarget) message(ps ...ovh.OperationPayload) []byte {
	m := ovh.NewRequestMessage(t.version, ps...)
	return ttlv.MarshalTTLV(&m)
}

// pairMessage is one message, a batch of Create then Get through the ID
// Placeholder: a durable write and a read of what it wrote.
func (t kmipTarget) pairMessage() []byte {
	return t.message(aesCreate(), &payloads.GetRequestPayload{})
}

func (t kmipTarget) getMessage(id string) []byte {
	return t.message(&payloads.GetRequestPayload{UniqueIdentifier: id})
}

// kmipReq is one request message and what reads the Unique Identifier its
// answer names (Create's), if anything.
type kmipReq struct {
	raw   []byte
	onUID func(string)
}

// maxKMIPAnswer caps an answer's length (a Get of one key is ~200 bytes).
const maxKMIPAnswer = 1 << 20

// runKMIP drives conns connections for d, each with up to inflight
// messages sent ahead of their answers (answers come back in order); a
// message's latency runs from its write to its answer.
func runKMIP(t kmipTarget, conns, inflight int, d time.Duration, next func(conn int) kmipReq) Result {
	deadline := time.Now().Add(d)
	return fanOut(conns, func(c int) Result { return kmipConn(t, c, inflight, deadline, next) })
}

// kmipConn is one connection's part of runKMIP.
func kmipConn(t kmipTarget, c, inflight int, deadline time.Time, next func(int) kmipReq) (r Result) {
	fail := r.fail
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", t.addr, t.tls)
	if err != nil {
		fail(explainTLS(err).Error())
		return r
	}
	defer nc.Close()
	// A server that stops answering ends the run instead of hanging it.
	nc.SetDeadline(deadline.Add(answerGrace))
	br := bufio.NewReaderSize(nc, 16<<10)
	type sent struct {
		t0    time.Time
		onUID func(string)
	}
	var (
		queue []sent
		buf   []byte
	)
	r.Lat = make([]time.Duration, 0, 4096)
	for {
		for len(queue) < inflight && time.Now().Before(deadline) {
			m := next(c)
			t0 := time.Now()
			if _, err := nc.Write(m.raw); err != nil {
				fail(err.Error())
				return r
			}
			queue = append(queue, sent{t0, m.onUID})
		}
		if len(queue) == 0 {
			return r
		}
		buf, err = readTTLV(br, buf[:0])
		if err != nil {
			// every message still in flight is lost with the connection
			fail(fmt.Sprintf("reading an answer: %v", explainTLS(err)))
			r.Errs += len(queue) - 1
			return r
		}
		s := queue[0]
		queue = queue[1:]
		r.Lat = append(r.Lat, time.Since(s.t0))
		uid, err := checkAnswer(buf)
		switch {
		case err != nil:
			fail(err.Error())
		case s.onUID != nil && uid == "":
			fail("a Create answer without a Unique Identifier")
		default:
			if s.onUID != nil {
				s.onUID(uid)
			}
			r.N++
		}
	}
}

// readTTLV reads one TTLV item (a whole message) into buf.
func readTTLV(br *bufio.Reader, buf []byte) ([]byte, error) {
	hdr, err := br.Peek(8)
	if err != nil {
		return buf, err
	}
	n := int(binary.BigEndian.Uint32(hdr[4:]))
	if n > maxKMIPAnswer {
		return buf, fmt.Errorf("an answer of %d bytes", n)
	}
	buf = slices.Grow(buf, 8+n)[:8+n]
	_, err = io.ReadFull(br, buf)
	return buf, err
}

// ttlvItem splits the first TTLV item off b: its tag, type, value and the
// rest after its padding.
func ttlvItem(b []byte) (tag int, typ byte, val, rest []byte, err error) {
	if len(b) < 8 {
		return 0, 0, nil, nil, errors.New("truncated TTLV")
	}
	tag = int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	typ = b[3]
	n := int(binary.BigEndian.Uint32(b[4:8]))
	padded := (n + 7) &^ 7
	if n > len(b)-8 || padded > len(b)-8 && typ != byte(ttlv.TypeStructure) {
		return 0, 0, nil, nil, errors.New("truncated TTLV")
	}
	end := min(8+padded, len(b))
	return tag, typ, b[8 : 8+n], b[end:], nil
}

// checkAnswer scans a Response Message: every batch item's Result Status
// must be Success; uid is the first Unique Identifier of a response
// payload (a Create's, in a Create+Get pair). A failed item is decoded
// whole by ovh's codec for its reason and message.
func checkAnswer(msg []byte) (uid string, err error) {
	tag, _, body, _, err := ttlvItem(msg)
	if err != nil || tag != ovh.TagResponseMessage {
		return "", fmt.Errorf("not a KMIP Response Message (% x)", msg[:min(len(msg), 8)])
	}
	items := 0
	for len(body) > 0 {
		var val []byte
		if tag, _, val, body, err = ttlvItem(body); err != nil {
			return "", err
		}
		if tag != ovh.TagBatchItem {
			continue
		}
		items++
		status := -1
		for len(val) > 0 {
			var f []byte
			if tag, _, f, val, err = ttlvItem(val); err != nil {
				return "", err
			}
			switch {
			case tag == ovh.TagResultStatus && len(f) == 4:
				status = int(binary.BigEndian.Uint32(f))
			case tag == ovh.TagResponsePayload && uid == "":
				for len(f) > 0 {
					var v []byte
					var typ byte
					if tag, typ, v, f, err = ttlvItem(f); err != nil {
						return "", err
					}
					if tag == ovh.TagUniqueIdentifier && typ == byte(ttlv.TypeTextString) {
						uid = string(v)
						break
					}
				}
			}
		}
		if status != int(ovh.ResultStatusSuccess) {
			return "", answerError(msg)
		}
	}
	if items == 0 {
		return "", errors.New("a KMIP answer without batch items")
	}
	return uid, nil
}

// answerError is what a failed answer says, through ovh's decoder.
func answerError(msg []byte) error {
	var m ovh.ResponseMessage
	if err := ttlv.UnmarshalTTLV(msg, &m); err != nil {
		return fmt.Errorf("an answer ovh/kmip-go cannot decode: %w", err)
	}
	for _, bi := range m.BatchItem {
		if err := bi.Err(); err != nil {
			return err
		}
	}
	return errors.New("an answer without a successful Result Status")
}
