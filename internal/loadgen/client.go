package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// request is one raw HTTP/1.1 request, the status it expects and what reads
// its body.
type request struct {
	raw    []byte
	want   int
	onBody func([]byte) error
}

// run runs clients connections for d, each calling next for its
// requests (appended to the buffer it is given); the request is built before
// the clock starts for it. A client whose next returns no request stops.
func run(tgt target, clients int, d time.Duration, next func(client int, buf []byte) request) Result {
	deadline := time.Now().Add(d)
	return fanOut(clients, func(c int) (r Result) {
		r.Lat = make([]time.Duration, 0, 4096)
		var (
			conn    net.Conn
			br      *bufio.Reader
			reqBuf  []byte
			bodyBuf []byte
		)
		defer func() {
			if conn != nil {
				conn.Close()
			}
		}()
		for time.Now().Before(deadline) {
			if conn == nil {
				var err error
				if conn, err = tgt.dial(); err != nil {
					r.fail(explainTLS(err).Error())
					break
				}
				// A server that stops answering ends the run instead of hanging it.
				conn.SetDeadline(deadline.Add(answerGrace))
				br = bufio.NewReaderSize(conn, 32<<10)
			}
			req := next(c, reqBuf[:0])
			if req.raw == nil {
				break // this client is done before the deadline
			}
			reqBuf = req.raw
			t0 := time.Now()
			if _, err := conn.Write(req.raw); err != nil {
				r.fail(err.Error())
				break
			}
			status, body, keepAlive, err := readResponse(br, bodyBuf[:0])
			bodyBuf = body
			r.Lat = append(r.Lat, time.Since(t0))
			switch {
			case err != nil:
				r.fail(explainTLS(err).Error())
			case status != req.want:
				r.fail(fmt.Sprintf("status %d: %s", status, bytes.TrimSpace(body)))
			case req.onBody != nil:
				if err := req.onBody(body); err != nil {
					r.fail(err.Error())
					break
				}
				r.N++
			default:
				r.N++
			}
			if err != nil {
				break // the connection is out of step
			}
			if !keepAlive {
				conn.Close()
				conn = nil
			}
		}
		return r
	})
}

// fanOut runs one(c) for clients connections at once and merges what they
// measured; the run lasts until the last one returns.
func fanOut(clients int, one func(c int) Result) Result {
	var (
		mu  sync.Mutex
		all Result
		wg  sync.WaitGroup
	)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := one(c)
			mu.Lock()
			all.N += r.N
			all.Errs += r.Errs
			all.Lat = append(all.Lat, r.Lat...)
			if all.FirstErr == "" {
				all.FirstErr = r.FirstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	all.Elapsed = time.Since(start)
	slices.Sort(all.Lat)
	return all
}

// fail counts a failed request, keeping the first failure's words.
func (r *Result) fail(msg string) {
	r.Errs++
	if r.FirstErr == "" {
		r.FirstErr = msg
	}
}

// answerGrace is how long after the run's end a request sent before it may
// still be answered (and counted, the run lasting that much longer); later,
// it is an error. A peer under overload (Barbican's uwsgi queue) otherwise
// stretches a 10 s run by minutes.
const answerGrace = 5 * time.Second
