package kmip

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/kms"
)

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
	remote := c.tc.RemoteAddr().String() // once: it is formatted anew on every call
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
		ctx := kms.WithRequest(s.ctx, "kmip-"+strconv.FormatUint(c.id, 10)+"-"+strconv.FormatUint(c.seq, 10), "kmip", remote)
		s.spawn(func() {
			w := s.getWriter()
			s.safeProcess(ctx, who, msg, w)
			clear(msg) // it may hold key material (Register)
			p.w = w
			close(p.done)
		})
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
