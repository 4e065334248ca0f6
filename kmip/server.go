package kmip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
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
	suiteB   SuiteB // what Query Profiles claims

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
	work    chan func() // to an idle worker (workers.go); unbuffered

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
		work: make(chan func()),
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
	if !cfg.TLS.SuiteB.valid() || (cfg.TLS.SuiteB != SuiteBOff && cfg.TLS.LegacyCipherSuites) {
		return nil, fmt.Errorf("kmip: Suite B mode %d with legacy suites %v: want 0, 128 or 192, without legacy suites",
			int(cfg.TLS.SuiteB), cfg.TLS.LegacyCipherSuites)
	}
	certs, err := cfg.TLS.SuiteB.serverCerts(append([]tls.Certificate{cfg.Certificate}, cfg.ExtraCertificates...))
	if err != nil {
		return nil, err
	}
	s.suiteB = cfg.TLS.SuiteB
	s.tls = TLSConfig(certs, cfg.Identities, cfg.TLS)
	cfg.Identities.onCRL(s.dropRevoked)
	s.ctx, s.cancel = context.WithCancel(context.WithValue(context.Background(), tlsListenerKey{}, true))
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
