package kmip

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"

	"github.com/keywarden/keywarden/kms"
)

// Streaming (KMIP 1.3 on: Init Indicator, Final Indicator, Correlation
// Value). Sign, Signature Verify, MAC, MAC Verify and Hash answer at the
// end: the server keeps the parts until the final one and then runs the
// operation once, so kms decides (policy, state, usage mask) on the whole
// data as for one request. Encrypt and Decrypt answer part by part
// (ops_cipherstream.go): kms decides once, at the Init part, and the
// parts run through the cipher it set up. Input is bounded per stream and
// in total, and a stream dies after streamTTL; it belongs to the identity,
// operation and key that opened it.

const (
	maxStreamData  = 1 << 20  // bytes of one stream
	maxStreamTotal = 64 << 20 // bytes of every open stream
	maxStreams     = 4096
	streamTTL      = 2 * time.Minute
)

type stream struct {
	owner   string
	op      uint32
	id      string
	req     *cryptoRequest    // the first part's parameters, data accumulated
	cs      *kms.CipherStream // Encrypt and Decrypt
	n       int               // input bytes taken, for the bounds
	expires time.Time
}

type streamTable struct {
	mu    sync.Mutex
	m     map[string]*stream
	bytes int
}

var streams = &streamTable{m: map[string]*stream{}}

var streamable = map[uint32]bool{
	uint32(kmip14.OperationSign): true, uint32(kmip14.OperationSignatureVerify): true,
	uint32(kmip14.OperationMAC): true, uint32(kmip14.OperationMACVerify): true, uint32(kmip14.OperationHash): true,
}

func (c *opCtx) owner() string { return c.who.Source + "\x00" + c.who.Project + "\x00" + c.who.User }

// streamPart handles a request that is part of a stream: it returns r
// unchanged for a single-shot request, the whole accumulated request for a
// stream's final part, and nil (the part answered) otherwise.
func (c *opCtx) streamPart(op uint32, r *cryptoRequest) (*cryptoRequest, *opError) {
	if !r.streamed() {
		return r, nil // Init and Final together, or neither: one shot
	}
	if !streamable[op] {
		return nil, notSupported("%s is served in one request, not as a stream", kmip14.Operation(op))
	}
	if r.corr == nil {
		if !r.init {
			return nil, missingData("a part after the first needs the stream's Correlation Value")
		}
		return nil, c.openStream(op, r)
	}
	t := streams
	t.mu.Lock()
	defer t.mu.Unlock()
	key, s, perr := t.find(c, op, r)
	if perr != nil {
		return nil, perr
	}
	if perr := t.take(key, s, len(r.data)); perr != nil {
		return nil, perr
	}
	s.req.data = append(s.req.data, r.data...)
	if r.hasSig {
		s.req.sig, s.req.hasSig = append([]byte(nil), r.sig...), true
	}
	if !r.final {
		c.writeStream(s.id, r.corr)
		return nil, nil
	}
	t.drop(key)
	s.req.hasData = true
	return s.req, nil
}

// openStream keeps the first part and answers with the Correlation Value.
func (c *opCtx) openStream(op uint32, r *cryptoRequest) *opError {
	t := streams
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, s := range t.m {
		if c.now.After(s.expires) {
			t.drop(k)
		}
	}
	if len(t.m) >= maxStreams || len(r.data) > maxStreamData || t.bytes+len(r.data) > maxStreamTotal {
		return errf(kmip20.ResultReasonServerLimitExceeded, "too many open streams; try again later")
	}
	corr := make([]byte, 16)
	_, _ = rand.Read(corr)
	// The request's slices point into the message buffer: keep copies.
	first := *r
	first.data = append([]byte(nil), r.data...)
	first.sig = append([]byte(nil), r.sig...)
	first.params.IV, first.params.AAD, first.params.Tag = nil, nil, nil
	t.m[string(corr)] = &stream{owner: c.owner(), op: op, id: r.id, req: &first, n: len(first.data), expires: c.now.Add(streamTTL)}
	t.bytes += len(first.data)
	c.writeStream(r.id, corr)
	return nil
}

// find is the caller's open stream of op named by r's Correlation Value.
// The caller holds t.mu.
func (t *streamTable) find(c *opCtx, op uint32, r *cryptoRequest) (string, *stream, *opError) {
	key := string(r.corr)
	s, ok := t.m[key]
	if !ok || s.owner != c.owner() || s.op != op || (r.id != "" && r.id != s.id) || c.now.After(s.expires) {
		if ok && c.now.After(s.expires) {
			t.drop(key)
		}
		return "", nil, errf(kmip20.ResultReasonInvalidCorrelationValue, "no open stream has this Correlation Value")
	}
	return key, s, nil
}

// take counts n more input bytes of stream s against the bounds; over
// them, the stream is dropped. The caller holds t.mu.
func (t *streamTable) take(key string, s *stream, n int) *opError {
	if s.n+n > maxStreamData || t.bytes+n > maxStreamTotal {
		t.drop(key)
		return errf(kmip20.ResultReasonServerLimitExceeded, "a stream takes at most %d bytes", maxStreamData)
	}
	s.n += n
	t.bytes += n
	return nil
}

func (t *streamTable) drop(key string) {
	if s, ok := t.m[key]; ok {
		t.bytes -= s.n
		if s.cs != nil {
			s.cs.Close()
		}
		delete(t.m, key)
	}
}

func (c *opCtx) writeStream(id string, corr []byte) {
	if id != "" {
		c.writeUID(id)
	}
	c.w.bytes(kmip14.TagCorrelationValue, corr)
}
