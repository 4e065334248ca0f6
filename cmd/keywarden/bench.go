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
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// bench is the project's load tool: N persistent HTTP/1.1 connections, each
// issuing requests back to back, with latency percentiles per operation. The
// client side is a few lines over net.Conn so that the load generator does not
// cost more CPU than the server it measures (both share this machine).
var benchOpts struct {
	url, token, project, ops, keepDir, cpuProfile string
	clients                                       int
	duration                                      time.Duration
}

var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Load-test the REST API: secret create and payload get throughput and latency",
	Long: `Without --url, bench starts a throw-away 'keywarden serve' (same binary, temporary
data dir, durable store, JWT auth) and drives it; with --url it drives a running server
using --token (or --project with a server in --insecure-noauth mode).`,
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
	rootCmd.AddCommand(benchCmd)
}

type benchTarget struct {
	addr, host string
	headers    string // extra header lines, CRLF-terminated
}

func runBench(ctx context.Context, out io.Writer) error {
	o := benchOpts
	if o.clients < 1 {
		return errors.New("--clients must be at least 1")
	}
	var tgt benchTarget
	if o.url == "" {
		stop, t, err := startBenchServer(o.keepDir, o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
		tgt = t
	} else {
		u, err := url.Parse(o.url)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("--url %q: want http://host:port", o.url)
		}
		tgt = benchTarget{addr: u.Host, host: u.Host}
		switch {
		case o.token != "":
			tgt.headers = "X-Auth-Token: " + o.token + "\r\n"
		case o.project != "":
			tgt.headers = "X-Project-Id: " + o.project + "\r\nX-Roles: admin\r\n"
		default:
			return errors.New("--url needs --token or --project")
		}
	}
	fmt.Fprintf(out, "keywarden bench: %d clients, %s per operation, target %s, GOMAXPROCS shared with the server\n\n",
		o.clients, o.duration, tgt.addr)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "op\trequests\terrors\tops/s\tp50\tp99\tmax\t")
	ids := make([][]string, o.clients)
	for op := range strings.SplitSeq(o.ops, ",") {
		var res benchResult
		switch op {
		case "create":
			res = benchRun(tgt, o.clients, o.duration, func(c int) benchReq {
				return createReq(tgt, &ids[c])
			})
		case "get":
			if len(slices.Concat(ids...)) == 0 {
				seed := benchRun(tgt, o.clients, time.Second, func(c int) benchReq { return createReq(tgt, &ids[c]) })
				if seed.n == 0 {
					return errors.New("bench: could not create any secret to read")
				}
			}
			next := make([]int, o.clients)
			res = benchRun(tgt, o.clients, o.duration, func(c int) benchReq {
				own := ids[c]
				if len(own) == 0 {
					own = ids[0]
				}
				id := own[next[c]%len(own)]
				next[c]++
				return benchReq{raw: []byte("GET /v1/secrets/" + id + "/payload HTTP/1.1\r\nHost: " + tgt.host +
					"\r\nAccept: application/octet-stream\r\n" + tgt.headers + "\r\n"), want: 200}
			})
		default:
			return fmt.Errorf("--ops: unknown operation %q", op)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t\n", op, res.n, res.errs, float64(res.n)/res.elapsed.Seconds(),
			res.pct(0.50), res.pct(0.99), res.pct(1))
		if res.firstErr != "" {
			fmt.Fprintf(out, "first error (%s): %s\n", op, res.firstErr)
		}
	}
	return w.Flush()
}

func createReq(tgt benchTarget, sink *[]string) benchReq {
	key := make([]byte, 32)
	rand.Read(key)
	body := `{"name":"bench","secret_type":"symmetric","algorithm":"aes","bit_length":256,"mode":"xts",` +
		`"payload_content_type":"application/octet-stream","payload_content_encoding":"base64","payload":"` +
		base64.StdEncoding.EncodeToString(key) + `"}`
	return benchReq{
		raw: []byte(fmt.Sprintf("POST /v1/secrets HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s",
			tgt.host, tgt.headers, len(body), body)),
		want: 201,
		onBody: func(b []byte) {
			var r struct {
				Ref string `json:"secret_ref"`
			}
			if json.Unmarshal(b, &r) == nil {
				*sink = append(*sink, r.Ref[strings.LastIndexByte(r.Ref, '/')+1:])
			}
		},
	}
}

type benchReq struct {
	raw    []byte
	want   int
	onBody func([]byte)
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
// requests; the request is built before the clock starts for it.
func benchRun(tgt benchTarget, clients int, d time.Duration, next func(client int) benchReq) benchResult {
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
			var lat []time.Duration
			n, errs, firstErr := 0, 0, ""
			fail := func(msg string) {
				errs++
				if firstErr == "" {
					firstErr = msg
				}
			}
			conn, err := net.Dial("tcp", tgt.addr)
			if err != nil {
				fail(err.Error())
			} else {
				defer conn.Close()
				br, bw := bufio.NewReaderSize(conn, 32<<10), bufio.NewWriterSize(conn, 8<<10)
				for time.Now().Before(deadline) {
					req := next(c)
					t0 := time.Now()
					bw.Write(req.raw)
					if err := bw.Flush(); err != nil {
						fail(err.Error())
						break
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						fail(err.Error())
						break
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					lat = append(lat, time.Since(t0))
					switch {
					case err != nil:
						fail(err.Error())
					case resp.StatusCode != req.want:
						fail(fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body)))
					default:
						n++
						if req.onBody != nil {
							req.onBody(body)
						}
					}
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

// startBenchServer runs this binary's serve command on a free port with a
// fresh data dir and a minted token.
func startBenchServer(dataDir, cpuProfile string) (stop func(), tgt benchTarget, err error) {
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
	tgt = benchTarget{addr: addr, host: addr, headers: "X-Auth-Token: " + strings.TrimSpace(string(out)) + "\r\n"}
	return stop, tgt, nil
}
