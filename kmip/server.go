package kmip

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gemalto/kmip-go/kmip20"

	"github.com/keywarden/keywarden/kms"
)

// Defaults of Config.
const (
	DefaultMaxMessage   = 1 << 20
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultMaxInFlight  = 32

	DefaultHandshakeTimeout  = 5 * time.Second
	DefaultMaxConns          = 1024
	DefaultMaxConnsPerSource = 128
	DefaultMaxBatchItems     = 64
)

// logEvery is how often a kind of connection-level failure (handshake
// failed, connection refused at a cap, accept error) is logged at most:
// one line, with how many were not logged since the previous one.
const logEvery = 10 * time.Second

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("kmip: server closed")

// Config describes a KMIP server.
type Config struct {
	// Service answers every operation; the adapter holds no rules.
	Service *kms.Service
	// Certificate is the server's certificate and key; ExtraCertificates
	// are others (e.g. an ECDSA one beside an RSA one): TLS picks the first
	// the client can use.
	Certificate       tls.Certificate
	ExtraCertificates []tls.Certificate
	// Identities verifies client certificates and maps them to callers.
	Identities *Identities
	// MaxMessage caps a request message in bytes (default 1 MiB): a larger
	// length header is answered with an error and the connection closed,
	// without reading or allocating the body.
	MaxMessage int
	// ReadTimeout bounds reading one message once it has begun (and the TLS
	// handshake); WriteTimeout bounds writing one response; IdleTimeout
	// bounds the wait for the next message.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxInFlight caps the requests one connection may have being processed
	// or waiting to be answered (default 32); reading pauses beyond it.
	MaxInFlight int
	// HandshakeTimeout bounds the TLS handshake (default 5 s): a client
	// that connects and says nothing holds its connection no longer.
	HandshakeTimeout time.Duration
	// MaxConns caps the connections open at once (default 1024), and
	// MaxConnsPerSource those from one IP address (default 128). A
	// connection over either cap is closed as soon as it is accepted,
	// before any TLS, and counted (ObserveConn "refused").
	MaxConns, MaxConnsPerSource int
	// MaxBatchItems caps the batch items of one request (default 64): a
	// request with more is answered with one failed item, Result Reason
	// Invalid Message, before any item runs; the connection stays open.
	MaxBatchItems int
	// TLS is the cipher-suite policy. Zero: TLS 1.3 and the
	// forward-secret AEAD suites of TLS 1.2. (Revocation is the CRL
	// Identities holds: Identities.SetCRL, WatchCRL.)
	TLS TLSOptions
	// Logger receives connection-level events (default: discard).
	Logger *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Observe, when set, is told of every batch item answered: the
	// operation's name ("Get"; "" when the item named none), the Result
	// Reason of a failure ("" on success) and the time it took.
	Observe func(op, failure string, elapsed time.Duration)
	// ObserveConn, when set, is told of each connection-level failure:
	// event "handshake_failed" (reason timeout, closed, certificate,
	// revoked, protocol, or shed: closed to free a descriptor when accept
	// ran out of them), "refused" (reason max_connections or
	// max_connections_per_source) or "accept_error" (reason the errno's
	// name, e.g. EMFILE, or "other"). Reasons are a bounded set.
	ObserveConn func(event, reason string)
}

// Server is a KMIP server: TLS listener, TTLV framing, operations on a
// kms.Service. It is safe for concurrent use.
type Server struct {
	svc      *kms.Service
	tls      *tls.Config
	ids      *Identities
	maxMsg   int
	readTO   time.Duration
	writeTO  time.Duration
	idleTO   time.Duration
	inFlight int
	log      *slog.Logger
	now      func() time.Time
	observe  func(op, failure string, elapsed time.Duration)
	obsConn  func(event, reason string)
	hsTO     time.Duration
	maxConns int
	maxSrc   int
	maxItems int

	// Rate limits of the connection-level log lines.
	logHandshake, logRefused, logAccept rateLog

	// ctx is cancelled when the server is closed for good: operations
	// still running are abandoned.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perSource map[string]int
	closing   atomic.Bool
	active    sync.WaitGroup
	connSeq   atomic.Uint64

	writers sync.Pool

	// codecHook, set only by benchmarks, runs on every message before it is
	// processed: it adds the cost of gemalto's reflective codec to measure
	// the server as it would be without the hand-written fast path.
	codecHook func(msg []byte)
}

// NewServer checks cfg and builds a server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("kmip: no service")
	}
	if cfg.Identities == nil {
		return nil, errors.New("kmip: no client identities")
	}
	if len(cfg.Certificate.Certificate) == 0 {
		return nil, errors.New("kmip: no server certificate")
	}
	s := &Server{
		svc: cfg.Service, ids: cfg.Identities, maxMsg: cfg.MaxMessage,
		readTO: cfg.ReadTimeout, writeTO: cfg.WriteTimeout, idleTO: cfg.IdleTimeout,
		inFlight: cfg.MaxInFlight, log: cfg.Logger, now: cfg.Now, observe: cfg.Observe,
		obsConn: cfg.ObserveConn, hsTO: cfg.HandshakeTimeout, maxConns: cfg.MaxConns,
		maxSrc: cfg.MaxConnsPerSource, maxItems: cfg.MaxBatchItems,
		listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}, perSource: map[string]int{},
	}
	orDefault(&s.maxMsg, DefaultMaxMessage)
	if s.maxMsg < 64 {
		return nil, errors.New("kmip: MaxMessage is too small to hold a request")
	}
	orDefault(&s.readTO, DefaultReadTimeout)
	orDefault(&s.writeTO, DefaultWriteTimeout)
	orDefault(&s.idleTO, DefaultIdleTimeout)
	orDefault(&s.inFlight, DefaultMaxInFlight)
	orDefault(&s.hsTO, DefaultHandshakeTimeout)
	orDefault(&s.maxConns, DefaultMaxConns)
	orDefault(&s.maxSrc, DefaultMaxConnsPerSource)
	orDefault(&s.maxItems, DefaultMaxBatchItems)
	if s.obsConn == nil {
		s.obsConn = func(string, string) {}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tls = TLSConfig(append([]tls.Certificate{cfg.Certificate}, cfg.ExtraCertificates...), cfg.Identities, cfg.TLS)
	cfg.Identities.onCRL(s.dropRevoked)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.writers.New = func() any { return &writer{b: make([]byte, 0, 1024), stack: make([]int, 0, 8)} }
	return s, nil
}

// orDefault replaces a zero or negative setting by its default.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Serve accepts connections on l (a plain TCP listener: the server does
// TLS) until Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// As net/http does, but for every error: out of file
			// descriptors or buffers now is not out of them for good, and
			// the listener must outlive a flood.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			reason := acceptReason(err)
			s.obsConn("accept_error", reason)
			if reason == "EMFILE" || reason == "ENFILE" {
				// Out of descriptors: the oldest connections that have
				// not authenticated give theirs back, for the clients
				// (and the other listeners) that will.
				s.shedHandshakes(shedBatch)
			}
			if n, ok := s.logAccept.allow(time.Now()); ok {
				s.log.Error("kmip: accept failed; retrying", "err", err, "retry_in", backoff, "suppressed", n)
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		src := sourceOf(nc.RemoteAddr())
		c := &conn{s: s, nc: nc, id: s.connSeq.Add(1), src: src}
		c.handshaking.Store(true)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		refused := ""
		switch {
		case len(s.conns) >= s.maxConns:
			refused = "max_connections"
		case s.perSource[src] >= s.maxSrc:
			refused = "max_connections_per_source"
		default:
			s.conns[c] = struct{}{}
			s.perSource[src]++
			s.active.Add(1)
		}
		s.mu.Unlock()
		if refused != "" {
			s.refuse(nc, src, refused)
			continue
		}
		go c.serve()
	}
}

// shedBatch is how many unauthenticated connections one accept failure for
// lack of descriptors closes.
const shedBatch = 16

// shedHandshakes closes up to n of the oldest connections still in their
// TLS handshake.
func (s *Server) shedHandshakes(n int) {
	s.mu.Lock()
	var victims []*conn
	for c := range s.conns {
		if c.handshaking.Load() {
			victims = append(victims, c)
		}
	}
	slices.SortFunc(victims, func(a, b *conn) int { return cmp.Compare(a.id, b.id) })
	for _, c := range victims[:min(n, len(victims))] {
		c.shed.Store(true)
		c.nc.Close()
	}
	s.mu.Unlock()
}

// refuse closes a connection over a cap at once: no TLS, nothing read.
func (s *Server) refuse(nc net.Conn, src, reason string) {
	nc.Close()
	s.obsConn("refused", reason)
	if n, ok := s.logRefused.allow(time.Now()); ok {
		s.log.Warn("kmip: connection refused at a cap", "remote", src, "cap", reason,
			"max_connections", s.maxConns, "max_connections_per_source", s.maxSrc, "suppressed", n)
	}
}

// OpenConns is how many connections are open (handshaking or served).
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// sourceOf is the IP address a connection comes from, its per-source key.
func sourceOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// acceptReason names an accept error by its errno, a bounded label.
func acceptReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE:
			return "EMFILE"
		case syscall.ENFILE:
			return "ENFILE"
		case syscall.ENOBUFS:
			return "ENOBUFS"
		case syscall.ENOMEM:
			return "ENOMEM"
		case syscall.ECONNABORTED:
			return "ECONNABORTED"
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}

// handshakeReason classifies a failed TLS handshake into a bounded set.
func handshakeReason(err error) string {
	var (
		ne  net.Error
		cve *tls.CertificateVerificationError
		rev *RevokedError
	)
	switch {
	case errors.As(err, &rev):
		return "revoked"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.As(err, &cve) || strings.Contains(err.Error(), "certificate"):
		return "certificate"
	}
	return "protocol"
}

// rateLog lets one line through per logEvery and counts the others.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now and how many were held back since the
// last line logged.
func (r *rateLog) allow(now time.Time) (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < logEvery {
		r.suppressed++
		return 0, false
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return n, true
}

// Shutdown stops accepting, lets every connection finish the requests it
// has read and send their responses, then closes it. If ctx ends first, the
// remaining connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.cancel()
	s.mu.Lock()
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	return nil
}

// Handle answers one request message (the full TTLV bytes) for who and
// returns the response message. It is what each connection runs, exposed
// for tests and fuzzing; it never fails to produce a response.
func (s *Server) Handle(ctx context.Context, who kms.Identity, msg []byte) []byte {
	w := s.getWriter()
	defer s.putWriter(w)
	s.safeProcess(ctx, who, msg, w)
	return append([]byte(nil), w.b...)
}

// safeProcess is process with a last line of defence: a panic outside an
// operation handler (which run already contains) still yields a response,
// General Failure, instead of taking the server down.
func (s *Server) safeProcess(ctx context.Context, who kms.Identity, msg []byte, w *writer) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("kmip: panic processing a message", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			clear(w.b)
			w.b, w.stack = w.b[:0], w.stack[:0]
			var r response
			r.start(w, versionIn(msg), s.now().UTC(), nil, 0)
			r.failItem(false, 0, nil, false, errf(kmip20.ResultReasonGeneralFailure, "internal error"))
			r.finish()
		}
	}()
	s.process(ctx, who, msg, w)
}

func (s *Server) getWriter() *writer { return s.writers.Get().(*writer) }

// putWriter zeroes a response buffer (it may have held key material) and
// keeps it for reuse; very large ones are dropped.
func (s *Server) putWriter(w *writer) {
	clear(w.b)
	w.b, w.stack = w.b[:0], w.stack[:0]
	if cap(w.b) <= 64<<10 {
		s.writers.Put(w)
	}
}

// errorResponse is a complete response message failing the whole request.
func (s *Server) errorResponse(ver version, perr *opError) *writer {
	w := s.getWriter()
	var r response
	r.start(w, ver, s.now().UTC(), nil, 0)
	r.failItem(false, 0, nil, false, perr)
	r.finish()
	return w
}

// conn is one client connection. A reader goroutine frames requests and
// starts one goroutine per request; responses are written in request order
// by a writer goroutine, so several requests are processed at once while
// each client still reads its answers in order.
type conn struct {
	s    *Server
	nc   net.Conn
	tc   *tls.Conn
	id   uint64
	src  string // the client's IP address
	leaf atomic.Pointer[x509.Certificate]
	seq  uint64
	stop atomic.Bool

	// handshaking is set until the TLS handshake ends; shed marks a
	// connection closed to free its descriptor.
	handshaking, shed atomic.Bool
}

// pending is a request being processed; done closes when w holds the
// response.
type pending struct {
	w    *writer
	done chan struct{}
	last bool // close the connection after this response
}

func (c *conn) stopReading() {
	c.stop.Store(true)
	c.nc.SetReadDeadline(time.Unix(1, 0))
}

func (c *conn) serve() {
	s := c.s
	defer func() {
		c.nc.Close()
		s.mu.Lock()
		delete(s.conns, c)
		if s.perSource[c.src]--; s.perSource[c.src] <= 0 {
			delete(s.perSource, c.src)
		}
		s.mu.Unlock()
		s.active.Done()
	}()
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("kmip: connection panic", "conn", c.id, "panic", v)
		}
	}()
	c.tc = tls.Server(c.nc, s.tls)
	c.nc.SetDeadline(time.Now().Add(s.hsTO))
	err := c.tc.HandshakeContext(s.ctx)
	c.handshaking.Store(false)
	if err != nil {
		if s.ctx.Err() != nil || c.stop.Load() {
			return // shutting down
		}
		reason := handshakeReason(err)
		if c.shed.Load() {
			reason = "shed"
		}
		s.obsConn("handshake_failed", reason)
		if n, ok := s.logHandshake.allow(time.Now()); ok {
			s.log.Info("kmip: TLS handshake failed", "remote", c.nc.RemoteAddr().String(), "reason", reason,
				"err", err, "suppressed", n, "every", logEvery)
		}
		return
	}
	c.nc.SetDeadline(time.Time{})
	chains := c.tc.ConnectionState().VerifiedChains
	who, err := s.ids.Identify(chains)
	if err != nil { // VerifyConnection already refused it; belt and braces
		return
	}
	c.leaf.Store(chains[0][0])
	if s.ids.Revoked(chains[0][0]) { // revoked since the handshake began
		return
	}
	s.log.Debug("kmip: connection", "conn", c.id, "remote", c.nc.RemoteAddr().String(),
		"project", who.Project, "user", who.User)

	queue := make(chan *pending, s.inFlight)
	writerDone := make(chan struct{})
	go c.writeLoop(queue, writerDone)
	c.readLoop(who, queue)
	close(queue)
	<-writerDone
}

// readLoop frames requests until the client stops, a timeout, a framing
// error or shutdown. It reads the TLS connection directly (no extra buffer
// to hold request bytes, which may be key material).
func (c *conn) readLoop(who kms.Identity, queue chan<- *pending) {
	s := c.s
	var hdr [hdrLen]byte
	for {
		c.nc.SetReadDeadline(time.Now().Add(s.idleTO))
		if c.stop.Load() {
			return
		}
		if _, err := io.ReadFull(c.tc, hdr[:1]); err != nil {
			return // client closed, idle timeout or shutdown
		}
		c.nc.SetReadDeadline(time.Now().Add(s.readTO))
		if _, err := io.ReadFull(c.tc, hdr[1:]); err != nil {
			return // a stray byte or few, then silence: not KMIP
		}
		if !requestHeader(hdr) {
			s.log.Info("kmip: not a KMIP request, closing", "conn", c.id)
			return
		}
		n := uint64(binary.BigEndian.Uint32(hdr[4:]))
		if n > uint64(s.maxMsg-hdrLen) {
			// Answer without reading (or allocating) the body, then close.
			c.queue(queue, s.errorResponse(c.peekVersion(hdr),
				invalidMessage("the request is %d bytes, over the %d-byte limit", n+hdrLen, s.maxMsg)), true)
			return
		}
		msg := make([]byte, hdrLen+int(n))
		copy(msg, hdr[:])
		if got, err := io.ReadFull(c.tc, msg[hdrLen:]); err != nil {
			c.queue(queue, s.errorResponse(versionIn(msg[:hdrLen+got]),
				invalidMessage("the request is truncated: %d of %d bytes arrived", got+hdrLen, n+hdrLen)), true)
			clear(msg)
			return
		}
		p := &pending{done: make(chan struct{})}
		queue <- p
		c.seq++
		ctx := kms.WithRequest(s.ctx, "kmip-"+strconv.FormatUint(c.id, 10)+"-"+strconv.FormatUint(c.seq, 10), "kmip", c.tc.RemoteAddr().String())
		go func() {
			w := s.getWriter()
			s.safeProcess(ctx, who, msg, w)
			clear(msg) // it may hold key material (Register)
			p.w = w
			close(p.done)
		}()
	}
}

// peekVersion reads what follows an oversized message's header, briefly,
// to find the Protocol Version the error should be written in.
func (c *conn) peekVersion(hdr [hdrLen]byte) version {
	var buf [hdrLen + 48]byte
	copy(buf[:], hdr[:])
	c.nc.SetReadDeadline(time.Now().Add(min(c.s.readTO, 200*time.Millisecond)))
	n, _ := io.ReadAtLeast(c.tc, buf[hdrLen:], len(buf)-hdrLen)
	return versionIn(buf[:hdrLen+n])
}

// queue hands the writer a response that is already complete.
func (c *conn) queue(queue chan<- *pending, w *writer, last bool) {
	p := &pending{w: w, done: make(chan struct{}), last: last}
	close(p.done)
	queue <- p
}

// writeLoop writes responses in request order. Responses that are ready
// together go out in one write, so a pipelining client gets them in few
// TLS records.
func (c *conn) writeLoop(queue <-chan *pending, done chan<- struct{}) {
	s := c.s
	defer close(done)
	var out []byte
	failed := false
	for p := range queue {
		<-p.done
		if !failed {
			out = append(out, p.w.b...)
		}
		s.putWriter(p.w)
		if failed || (len(queue) > 0 && !p.last && len(out) < 64<<10) {
			continue
		}
		c.nc.SetWriteDeadline(time.Now().Add(s.writeTO))
		_, err := c.tc.Write(out)
		clear(out)
		out = out[:0]
		if err != nil {
			failed = true
			s.log.Debug("kmip: write failed", "conn", c.id, "err", err)
			c.nc.Close() // unblocks the reader
			continue
		}
		if p.last {
			// Half-close so the client reads the answer before the
			// connection goes.
			c.tc.CloseWrite()
		}
	}
}

// requestHeader reports whether 8 bytes open a Request Message: anything
// else is not KMIP and the connection is closed without an answer.
func requestHeader(h [hdrLen]byte) bool {
	return h[0] == 0x42 && h[1] == 0x00 && h[2] == 0x78 && h[3] == 0x01
}

// versionIn reads the Protocol Version at the start of a request, if it
// arrived, for an error response the client can decode; else 1.0.
func versionIn(msg []byte) version {
	var h header
	salvageVersion(msg, &h)
	if !h.hasVersion {
		return version{1, 0}
	}
	return h.ver.fallback()
}
