package kmip

import (
	"cmp"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Admission: who gets a connection when descriptors or caps run short,
// and how connection-level failures are named and logged.

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
