package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/spf13/cobra"
)

// bench is the project's load tool: N persistent HTTP/1.1 connections, each
// issuing requests back to back, with latency percentiles per operation. The
// client side is a few lines over net.Conn so that the load generator does not
// cost more CPU than the server it measures (both share this machine).
var benchOpts struct {
	url, token, project, ops, keepDir, cpuProfile, serverConfig string
	clients                                                     int
	duration                                                    time.Duration
	keystone                                                    bool
}

var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Load-test the REST API: secret create and payload get throughput and latency",
	Long: `Without --url, bench starts a throw-away 'keywarden serve' (same binary, temporary
data dir, durable store, JWT auth; --server-config gives it a config file) and drives it;
with --url it drives a running server using --token (or --project with a server in
--insecure-noauth mode).

With --keystone, the requests carry a Keystone token instead, obtained with the OpenStack
environment (an openrc: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME,
OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME); the started server needs auth.keystone in
its --server-config.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd.Context(), cmd.OutOrStdout()) },
}

func init() {
	f := benchCmd.Flags()
	f.StringVar(&benchOpts.url, "url", "", "server base URL, e.g. http://127.0.0.1:9311 (default: start one)")
	f.StringVar(&benchOpts.token, "token", "", "X-Auth-Token for --url")
	f.StringVar(&benchOpts.project, "project", "", "X-Project-Id for --url servers in --insecure-noauth mode")
	f.StringVar(&benchOpts.ops, "ops", "create,get", "operations, in order: create, get")
	f.IntVar(&benchOpts.clients, "clients", 32, "concurrent keep-alive connections")
	f.DurationVar(&benchOpts.duration, "duration", 10*time.Second, "time per operation")
	f.StringVar(&benchOpts.keepDir, "data-dir", "", "data dir of the started server (default: temporary, removed)")
	f.StringVar(&benchOpts.cpuProfile, "server-cpuprofile", "", "write the started server's CPU profile here")
	f.StringVar(&benchOpts.serverConfig, "server-config", "", "config file for the started server (e.g. with auth.keystone)")
	f.BoolVar(&benchOpts.keystone, "keystone", false, "send a Keystone token obtained with the OS_* environment")
	rootCmd.AddCommand(benchCmd)
}

type benchTarget struct {
	addr, host string
	headers    string // extra header lines, CRLF-terminated
	serverPID  int    // the started server, 0 with --url
}

func runBench(ctx context.Context, out io.Writer) error {
	o := benchOpts
	tuneRuntime() // the load generator shares the CPU with the server: keep its GC small too
	if o.clients < 1 {
		return errors.New("--clients must be at least 1")
	}
	var tgt benchTarget
	if o.url == "" {
		stop, t, err := startBenchServer(o.keepDir, o.cpuProfile, o.serverConfig)
		if err != nil {
			return err
		}
		defer stop()
		tgt = t
		if o.keystone {
			tgt.headers = ""
		}
	} else {
		u, err := url.Parse(o.url)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("--url %q: want http://host:port", o.url)
		}
		tgt = benchTarget{addr: u.Host, host: u.Host}
		switch {
		case o.keystone:
		case o.token != "":
			tgt.headers = "X-Auth-Token: " + o.token + "\r\n"
		case o.project != "":
			tgt.headers = "X-Project-Id: " + o.project + "\r\nX-Roles: admin\r\n"
		default:
			return errors.New("--url needs --token or --project")
		}
	}
	auth := "JWT"
	if o.keystone {
		tok, err := keystoneToken(ctx)
		if err != nil {
			return err
		}
		tgt.headers, auth = "X-Auth-Token: "+tok+"\r\n", "Keystone token"
	}
	fmt.Fprintf(out, "keywarden bench: %d clients, %s per operation, target %s, %s, GOMAXPROCS shared with the server\n\n",
		o.clients, o.duration, tgt.addr, auth)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	// CPU per request (user+system, this process and the started server):
	// unlike ops/s it hardly moves when other work shares the machine.
	fmt.Fprintln(w, "op\trequests\terrors\tops/s\tp50\tp99\tmax\tserver CPU/op\tbench CPU/op\t")
	ids := make([][]string, o.clients)
	for op := range strings.SplitSeq(o.ops, ",") {
		var res benchResult
		var cpu0 [2]time.Duration
		start := func() { cpu0 = [2]time.Duration{processCPU(tgt.serverPID), processCPU(0)} }
		switch op {
		case "create":
			start()
			res = benchRun(tgt, o.clients, o.duration, func(c int, buf []byte) benchReq {
				return createReq(tgt, buf, &ids[c])
			})
		case "get":
			if len(slices.Concat(ids...)) == 0 {
				seed := benchRun(tgt, o.clients, time.Second, func(c int, buf []byte) benchReq { return createReq(tgt, buf, &ids[c]) })
				if seed.n == 0 {
					return errors.New("bench: could not create any secret to read")
				}
			}
			next := make([]int, o.clients)
			start()
			res = benchRun(tgt, o.clients, o.duration, func(c int, buf []byte) benchReq {
				own := ids[c]
				if len(own) == 0 {
					own = ids[0]
				}
				id := own[next[c]%len(own)]
				next[c]++
				buf = append(buf, "GET /v1/secrets/"...)
				buf = append(buf, id...)
				buf = append(buf, "/payload HTTP/1.1\r\nHost: "...)
				buf = append(buf, tgt.host...)
				buf = append(buf, "\r\nAccept: application/octet-stream\r\n"...)
				buf = append(buf, tgt.headers...)
				buf = append(buf, "\r\n"...)
				return benchReq{raw: buf, want: 200}
			})
		default:
			return fmt.Errorf("--ops: unknown operation %q", op)
		}
		perOp := func(pid int, before time.Duration) string {
			total := processCPU(pid) - before
			if before < 0 || total < 0 || res.n+res.errs == 0 {
				return "-"
			}
			return (total / time.Duration(res.n+res.errs)).Round(100 * time.Nanosecond).String()
		}
		srvCPU := "-"
		if tgt.serverPID != 0 {
			srvCPU = perOp(tgt.serverPID, cpu0[0])
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", op, res.n, res.errs, float64(res.n)/res.elapsed.Seconds(),
			res.pct(0.50), res.pct(0.99), res.pct(1), srvCPU, perOp(0, cpu0[1]))
		if res.firstErr != "" {
			fmt.Fprintf(out, "first error (%s): %s\n", op, res.firstErr)
		}
	}
	return w.Flush()
}

// createReq appends a create request for a fresh 256-bit key to buf; the
// answer's secret ref goes to sink.
func createReq(tgt benchTarget, buf []byte, sink *[]string) benchReq {
	var key [32]byte
	rand.Read(key[:])
	var b64 [44]byte
	base64.StdEncoding.Encode(b64[:], key[:])
	const head = `{"name":"bench","secret_type":"symmetric","algorithm":"aes","bit_length":256,"mode":"xts",` +
		`"payload_content_type":"application/octet-stream","payload_content_encoding":"base64","payload":"`
	const tail = `"}`
	buf = append(buf, "POST /v1/secrets HTTP/1.1\r\nHost: "...)
	buf = append(buf, tgt.host...)
	buf = append(buf, "\r\nContent-Type: application/json\r\n"...)
	buf = append(buf, tgt.headers...)
	buf = append(buf, "Content-Length: "...)
	buf = strconv.AppendInt(buf, int64(len(head)+len(b64)+len(tail)), 10)
	buf = append(buf, "\r\n\r\n"...)
	buf = append(buf, head...)
	buf = append(buf, b64[:]...)
	buf = append(buf, tail...)
	return benchReq{raw: buf, want: 201, onBody: func(b []byte) error {
		ref, err := secretRefOf(b)
		if err != nil {
			return err
		}
		*sink = append(*sink, ref[strings.LastIndexByte(ref, '/')+1:])
		return nil
	}}
}

// secretRefOf is the secret_ref of a create answer. The server's answer,
// {"secret_ref":"..."} and a newline, is read without reflection; any other
// valid JSON goes through encoding/json.
func secretRefOf(b []byte) (string, error) {
	const pre, post = `{"secret_ref":"`, `"}`
	t := bytes.TrimRight(b, " \t\r\n")
	if inner, ok := bytes.CutPrefix(t, []byte(pre)); ok {
		if ref, ok := bytes.CutSuffix(inner, []byte(post)); ok && len(ref) > 0 && !bytes.ContainsAny(ref, "\"\\") && utf8.Valid(ref) {
			return string(ref), nil
		}
	}
	var r struct {
		Ref string `json:"secret_ref"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Ref == "" {
		return "", fmt.Errorf("create answer without a secret_ref: %q", b)
	}
	return r.Ref, nil
}

type benchReq struct {
	raw    []byte
	want   int
	onBody func([]byte) error
}

type benchResult struct {
	n, errs  int
	elapsed  time.Duration
	lat      []time.Duration
	firstErr string
}

func (r *benchResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(p * float64(len(r.lat)-1))
	return r.lat[i].Round(time.Microsecond)
}

// benchRun runs clients connections for d, each calling next for its
// requests (appended to the buffer it is given); the request is built before
// the clock starts for it.
func benchRun(tgt benchTarget, clients int, d time.Duration, next func(client int, buf []byte) benchReq) benchResult {
	var (
		mu  sync.Mutex
		all benchResult
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			n, errs, firstErr := 0, 0, ""
			fail := func(msg string) {
				errs++
				if firstErr == "" {
					firstErr = msg
				}
			}
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
					if conn, err = net.Dial("tcp", tgt.addr); err != nil {
						fail(err.Error())
						break
					}
					br = bufio.NewReaderSize(conn, 32<<10)
				}
				req := next(c, reqBuf[:0])
				reqBuf = req.raw
				t0 := time.Now()
				if _, err := conn.Write(req.raw); err != nil {
					fail(err.Error())
					break
				}
				status, body, keepAlive, err := readResponse(br, bodyBuf[:0])
				bodyBuf = body
				lat = append(lat, time.Since(t0))
				switch {
				case err != nil:
					fail(err.Error())
				case status != req.want:
					fail(fmt.Sprintf("status %d: %s", status, bytes.TrimSpace(body)))
				case req.onBody != nil:
					if err := req.onBody(body); err != nil {
						fail(err.Error())
						break
					}
					n++
				default:
					n++
				}
				if err != nil {
					break // the connection is out of step
				}
				if !keepAlive {
					conn.Close()
					conn = nil
				}
			}
			mu.Lock()
			all.n += n
			all.errs += errs
			all.lat = append(all.lat, lat...)
			if all.firstErr == "" {
				all.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	all.elapsed = time.Since(start)
	slices.Sort(all.lat)
	return all
}

// readResponse reads one HTTP/1.1 response from br: its status code and its
// body, appended to buf, framed by Content-Length or chunked encoding (a
// response framed by neither is an error: the connection could not be
// reused). keepAlive is false when the server closes the connection after
// it. It costs next to nothing beside the server it measures, where
// http.ReadResponse builds a Response and a header map for every answer.
func readResponse(br *bufio.Reader, buf []byte) (status int, body []byte, keepAlive bool, err error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, buf, false, err
		}
		// "HTTP/1.1 200 OK"
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
			(len(line) > 12 && line[12] != ' ') {
			return 0, buf, false, fmt.Errorf("malformed status line %q", line)
		}
		status = 0
		for _, c := range line[9:12] {
			if c < '0' || c > '9' {
				return 0, buf, false, fmt.Errorf("malformed status line %q", line)
			}
			status = status*10 + int(c-'0')
		}
		keepAlive = line[7] == '1' // HTTP/1.1 keeps the connection by default
		length, chunked := int64(-1), false
		for {
			h, err := readLine(br)
			if err != nil {
				return status, buf, false, err
			}
			if len(h) == 0 {
				break
			}
			name, value, ok := bytes.Cut(h, []byte(":"))
			if !ok {
				return status, buf, false, fmt.Errorf("malformed header line %q", h)
			}
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 || (length >= 0 && n != length) {
					return status, buf, false, fmt.Errorf("bad Content-Length %q", value)
				}
				length = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				if !bytes.EqualFold(value, []byte("chunked")) {
					return status, buf, false, fmt.Errorf("unsupported Transfer-Encoding %q", value)
				}
				chunked = true
			case bytes.EqualFold(name, []byte("Connection")):
				for tok := range strings.SplitSeq(string(value), ",") {
					switch strings.ToLower(strings.TrimSpace(tok)) {
					case "close":
						keepAlive = false
					case "keep-alive":
						keepAlive = true
					}
				}
			}
		}
		switch {
		case status >= 100 && status < 200 && status != 101:
			continue // interim answer: the real one follows
		case status == 204 || status == 304:
			return status, buf, keepAlive, nil
		case chunked:
			buf, err = readChunked(br, buf)
			return status, buf, keepAlive && err == nil, err
		case length >= 0:
			if length > 64<<20 {
				return status, buf, false, fmt.Errorf("Content-Length %d is too large", length)
			}
			buf = slices.Grow(buf, int(length))[:len(buf)+int(length)]
			_, err = io.ReadFull(br, buf[len(buf)-int(length):])
			return status, buf, keepAlive && err == nil, err
		}
		return status, buf, false, errors.New("response without Content-Length or chunked encoding")
	}
}

// readLine reads a CRLF- (or LF-) terminated line, without its terminator;
// the line is valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = errors.New("response line too long")
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readChunked reads a chunked body (and its trailers) appended to buf.
func readChunked(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return buf, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || n > 64<<20 {
			return buf, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers up to the empty line
				t, err := readLine(br)
				if err != nil || len(t) == 0 {
					return buf, err
				}
			}
		}
		buf = slices.Grow(buf, int(n))[:len(buf)+int(n)]
		if _, err := io.ReadFull(br, buf[len(buf)-int(n):]); err != nil {
			return buf, err
		}
		if crlf, err := readLine(br); err != nil || len(crlf) != 0 {
			return buf, errors.New("chunk not followed by CRLF")
		}
	}
}

// processCPU is the user+system CPU time used so far by process pid (0:
// this process), from /proc; -1 when unknown.
func processCPU(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	// Fields after the command name (which may hold spaces), from field 3:
	// utime and stime are fields 14 and 15, in clock ticks.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	const clockTicks = 100 // USER_HZ, 100 on every Linux port Go supports
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// startBenchServer runs this binary's serve command on a free port with a
// fresh data dir and a minted token.
func startBenchServer(dataDir, cpuProfile, config string) (stop func(), tgt benchTarget, err error) {
	tmp := dataDir == ""
	if tmp {
		if dataDir, err = os.MkdirTemp("", "keywarden-bench-"); err != nil {
			return nil, tgt, err
		}
	}
	cleanup := func() {
		if tmp {
			os.RemoveAll(dataDir)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cleanup()
		return nil, tgt, err
	}
	addr := ln.Addr().String()
	ln.Close()
	self, err := os.Executable()
	if err != nil {
		cleanup()
		return nil, tgt, err
	}
	args := []string{"serve", "--data-dir", dataDir, "--rest-addr", addr, "--kmip-addr", "", "--log-level", "warn"}
	if config != "" {
		args = append(args, "--config", config)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	if cpuProfile != "" {
		abs, _ := filepath.Abs(cpuProfile)
		cmd.Env = append(os.Environ(), "KEYWARDEN_CPUPROFILE="+abs)
	}
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, tgt, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		cleanup()
	}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			stop()
			return nil, tgt, fmt.Errorf("bench: server did not start on %s", addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
	out, err := exec.Command(self, "token", "--data-dir", dataDir, "--project", "bench", "--user", "bench", "--roles", "admin", "--ttl", "2h").Output()
	if err != nil {
		stop()
		return nil, tgt, fmt.Errorf("bench: minting a token: %w", err)
	}
	tgt = benchTarget{addr: addr, host: addr, headers: "X-Auth-Token: " + strings.TrimSpace(string(out)) + "\r\n",
		serverPID: cmd.Process.Pid}
	return stop, tgt, nil
}

// keystoneToken signs in to Keystone with an openrc's environment, as the
// openstack CLI does, and returns the project-scoped token.
func keystoneToken(ctx context.Context) (string, error) {
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	ao := gophercloud.AuthOptions{
		IdentityEndpoint: env("OS_AUTH_URL", ""), Username: env("OS_USERNAME", ""), Password: env("OS_PASSWORD", ""),
		DomainName: env("OS_USER_DOMAIN_NAME", "Default"),
		Scope:      &gophercloud.AuthScope{ProjectName: env("OS_PROJECT_NAME", ""), DomainName: env("OS_PROJECT_DOMAIN_NAME", "Default")},
	}
	if ao.IdentityEndpoint == "" || ao.Username == "" || ao.Password == "" || ao.Scope.ProjectName == "" {
		return "", errors.New("bench --keystone: set OS_AUTH_URL, OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME (an openrc)")
	}
	pc, err := openstack.AuthenticatedClient(ctx, ao)
	if err != nil {
		return "", fmt.Errorf("bench --keystone: signing in: %w", err)
	}
	return pc.Token(), nil
}
