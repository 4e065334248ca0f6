package kmip_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keywarden/keywarden/kmip/pki"
	"github.com/keywarden/keywarden/tests/testserver"
)

// discoverRequest is a KMIP 1.2 Discover Versions request, encoded by hand
// (independent of every codec under test).
func discoverRequest() []byte {
	item := func(tag uint32, typ byte, body []byte) []byte {
		b := []byte{byte(tag >> 16), byte(tag >> 8), byte(tag), typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[4:], uint32(len(body)))
		b = append(b, body...)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
		return b
	}
	i32 := func(tag uint32, typ byte, v uint32) []byte {
		return item(tag, typ, binary.BigEndian.AppendUint32(nil, v))
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	version := item(0x420069, 1, cat(i32(0x42006A, 2, 1), i32(0x42006B, 2, 2)))
	header := item(0x420077, 1, cat(version, i32(0x42000D, 2, 1)))
	batch := item(0x42000F, 1, cat(i32(0x42005C, 5, 0x1E), item(0x420079, 1, nil)))
	return item(0x420078, 1, cat(header, batch))
}

// successStatus is Result Status = Success as it appears in a response.
var successStatus = []byte{0x42, 0x00, 0x7F, 0x05, 0, 0, 0, 4, 0, 0, 0, 0}

// discover sends Discover Versions on c and reports whether it succeeded.
func discover(c net.Conn) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(discoverRequest()); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
	if _, err := io.ReadFull(c, body); err != nil {
		return err
	}
	if !bytes.Contains(body, successStatus) {
		return fmt.Errorf("Discover Versions failed")
	}
	return nil
}

// serveKMIP starts the binary with KMIP and metrics on free ports and an
// extra config body; it returns the process and its addresses. wrap, when
// given, is a command run around the binary (prlimit ...).
func serveKMIP(t *testing.T, data, extra string, wrap ...string) (p *process, kmipAddr, metricsURL string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "keywarden.yaml")
	os.WriteFile(cfg, []byte("metrics:\n  addr: 127.0.0.1:0\nkmip:\n  addr: 127.0.0.1:0\n"+extra), 0o600)
	args := append(wrap, keywardenBinary(t), "serve", "--config", cfg, "--data-dir", data, "--rest-addr", "127.0.0.1:0",
		"--insecure-noauth", "--log-level", "info")
	p = startProcess(t, args[0], args[1:]...)
	m := p.waitFor(t, startedRE)
	mm := regexp.MustCompile(`metrics=(http://\S+)`).FindStringSubmatch(p.log())
	if mm == nil {
		t.Fatalf("no metrics address:\n%s", p.log())
	}
	return p, m[2], mm[1]
}

// metric reads one sample from a /metrics scrape (0 when absent).
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return 0
}

func issueClient(t *testing.T, data, project, user string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), user)
	if b, err := exec.Command(keywardenBinary(t), "pki", "issue-client", "--data-dir", data, "--project", project,
		"--user", user, "--roles", "admin", "--out", out).CombinedOutput(); err != nil {
		t.Fatalf("issue-client: %v\n%s", err, b)
	}
	return out
}

// refusedWithin polls a fresh handshake and request with the client in dir
// until the server refuses it, and returns how long that took.
func refusedWithin(t *testing.T, addr, dir string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		c := dialRaw(t, addr, dir)
		err := discover(c)
		c.Close()
		if err != nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("still served %v after the revocation", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRevocationBinary: `keywarden pki revoke` against a running server:
// within 10 s (the server re-reads the CRL every 2 s) the certificate is
// refused in the handshake, its open connection is closed, PyKMIP with it
// is refused, other clients go on; `pki list` shows it; a restart keeps
// refusing it.
func TestRevocationBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	data := t.TempDir()
	// Another organisation's CA, mapped by OU, with a CRL of its own.
	foreign := newForeignCA(t)
	foreignCRL := filepath.Join(foreign.Dir(), pki.CRLFile)
	if _, err := foreign.Revoke(big.NewInt(12345)); err != nil { // its CRL exists before the server starts
		t.Fatal(err)
	}
	p, addr, metricsURL := serveKMIP(t, data, fmt.Sprintf("  client_cas: [%q]\n  client_crls: [%q]\n"+
		"  mappings:\n    - {ou: storage, project: storage-team, roles: [admin]}\n", foreign.file, foreignCRL))
	alice := issueClient(t, data, "rev", "alice")
	bob := issueClient(t, data, "rev", "bob")
	s := serverAt(addr)
	if res, err := pykmip(t, s, alice, "1.2", "discover"); err != nil {
		t.Fatalf("alice before revocation: %v %v", err, res)
	}
	held := dialRaw(t, addr, alice)
	if err := discover(held); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(keywardenBinary(t), "pki", "revoke", "--data-dir", data, "--cert", filepath.Join(alice, "client.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "revoked certificate") {
		t.Fatalf("pki revoke: %v\n%s", err, out)
	}
	d := refusedWithin(t, addr, alice, 10*time.Second)
	t.Logf("FIGURE revocation: a new handshake with the revoked certificate refused %v after `pki revoke` returned (limit 10 s)", d.Round(10*time.Millisecond))
	if err := discover(held); err == nil {
		t.Fatal("the revoked certificate's open connection still served")
	}
	if res, err := pykmip(t, s, alice, "1.2", "discover"); err == nil {
		t.Fatalf("PyKMIP with a revoked certificate served: %v", res)
	} else {
		t.Logf("PyKMIP with the revoked certificate: %v", res["error"])
	}
	if res, err := pykmip(t, s, bob, "1.2", "discover"); err != nil {
		t.Fatalf("bob after alice's revocation: %v %v", err, res)
	}
	if n := metric(t, metricsURL, `keywarden_kmip_tls_handshake_failures_total{reason="revoked"}`); n < 1 {
		t.Fatalf("revoked handshakes counted %v", n)
	}
	p.waitFor(t, regexp.MustCompile(`CRL reloaded.* revoked=2`)) // with the other CA's placeholder

	// pki list shows both, alice revoked; revoke bob by serial.
	list, err := exec.Command(keywardenBinary(t), "pki", "list", "--data-dir", data).CombinedOutput()
	if err != nil {
		t.Fatalf("pki list: %v\n%s", err, list)
	}
	t.Logf("pki list:\n%s", list)
	var bobSerial string
	for _, line := range strings.Split(string(list), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 6 && f[3] == "alice" && f[6] != "revoked":
			t.Fatalf("alice not listed as revoked: %q", line)
		case len(f) >= 6 && f[3] == "bob":
			if f[6] != "valid" {
				t.Fatalf("bob not valid: %q", line)
			}
			bobSerial = f[0]
		}
	}
	if bobSerial == "" {
		t.Fatalf("bob not listed:\n%s", list)
	}
	if out, err := exec.Command(keywardenBinary(t), "pki", "revoke", "--data-dir", data, "--serial", strings.ToUpper(bobSerial)).CombinedOutput(); err != nil {
		t.Fatalf("pki revoke --serial: %v\n%s", err, out)
	}
	d = refusedWithin(t, addr, bob, 10*time.Second)
	t.Logf("FIGURE revocation by serial: refused after %v", d.Round(10*time.Millisecond))
	// Bad input to the CLI: a clear error.
	for _, args := range [][]string{{"--serial", "nothex"}, {}, {"--serial", "01", "--cert", "x"}} {
		out, err := exec.Command(keywardenBinary(t), append([]string{"pki", "revoke", "--data-dir", data}, args...)...).CombinedOutput()
		if err == nil {
			t.Fatalf("pki revoke %v succeeded: %s", args, out)
		}
	}

	// The other CA revokes its client: its CRL file changes, the server
	// follows.
	svc := foreign.clientFiles(t, "ignored", "svc", mustRead(t, filepath.Join(alice, "ca.pem")), "storage")
	if err := discover(dialRaw(t, addr, svc)); err != nil {
		t.Fatalf("the other CA's client: %v", err)
	}
	svcSerial, err := foreign.CertSerial(mustRead(t, filepath.Join(svc, "client.pem")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := foreign.Revoke(svcSerial); err != nil {
		t.Fatal(err)
	}
	d = refusedWithin(t, addr, svc, 10*time.Second)
	t.Logf("FIGURE revocation by another CA's CRL (kmip.client_crls): refused after %v", d.Round(10*time.Millisecond))

	// A restart loads the CRL before serving.
	p.cmd.Process.Kill()
	p.cmd.Wait()
	_, addr, _ = serveKMIP(t, data, fmt.Sprintf("  client_cas: [%q]\n  client_crls: [%q]\n"+
		"  mappings:\n    - {ou: storage, project: storage-team, roles: [admin]}\n", foreign.file, foreignCRL))
	for _, dir := range []string{alice, svc} {
		c := dialRaw(t, addr, dir)
		if err := discover(c); err == nil {
			t.Fatalf("after a restart the revoked certificate in %s is served", dir)
		}
	}
}

// serverAt describes a server by address for the PyKMIP helper.
func serverAt(addr string) *server {
	host, port, _ := net.SplitHostPort(addr)
	return &server{addr: addr, host: host, port: port}
}

// TestFlood: 2,000 connections that never speak, from 40 addresses
// (under the per-source cap), against the binary with an open-file limit
// of 256; the flood stops by closing them all. Twice:
//   - the limit lowered while the server runs (its connection cap was
//     sized for a larger one): the flood exhausts descriptors, accept fails
//     with EMFILE, the listener sheds the oldest unauthenticated
//     connections, backs off and survives;
//   - the server started under the limit: it lowers its connection cap to
//     fit, the flood is refused at the cap, REST stays fast.
//
// Either way REST answers during the flood and a PyKMIP client is served
// within 10 s after the flood stops.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	needPyKMIP(t)
	t.Run("limit lowered at run time", func(t *testing.T) {
		data := t.TempDir()
		p, addr, metricsURL := serveKMIP(t, data, "")
		if err := unix.Prlimit(p.cmd.Process.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 256, Max: 256}, nil); err != nil {
			t.Fatalf("prlimit: %v", err)
		}
		f := flood(t, p, data, addr, metricsURL)
		if f.acceptErrs == 0 || f.shed == 0 {
			t.Errorf("want accept errors and unauthenticated connections shed: %+v", f)
		}
	})
	t.Run("started under the limit", func(t *testing.T) {
		data := t.TempDir()
		p, addr, metricsURL := serveKMIP(t, data, "", "/usr/bin/prlimit", "--nofile=256:256", "--")
		p.waitFor(t, regexp.MustCompile(`max_connections lowered to fit the open-file limit.* now=192`))
		f := flood(t, p, data, addr, metricsURL)
		if f.refused == 0 || f.acceptErrs != 0 {
			t.Errorf("want refusals at the cap and no accept error: %+v", f)
		}
	})
}

type floodFigures struct {
	acceptErrs, refused, timeouts, shed float64
	restTook, served                    time.Duration
}

func flood(t *testing.T, p *process, data, addr, metricsURL string) floodFigures {
	t.Helper()
	pid := p.cmd.Process.Pid
	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if !regexp.MustCompile(`Max open files\s+256\s+256`).Match(limits) {
		t.Fatalf("limit not applied:\n%s", limits)
	}
	client := issueClient(t, data, "flood", "pat")
	restURL := regexp.MustCompile(`rest=(http://\S+)`).FindStringSubmatch(p.log())[1]

	const total, sources = 2000, 40
	var (
		mu       sync.Mutex
		conns    []net.Conn
		dialFail atomic.Int64
		wg       sync.WaitGroup
		next     atomic.Int64
	)
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				src := net.IPv4(127, 0, 1, byte(1+int(i)%sources))
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 3 * time.Second}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					dialFail.Add(1)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	floodTook := time.Since(start)
	// While the flood holds its connections the process lives and REST
	// answers (when descriptors run out, only once handshake deadlines
	// free some: the limit is the process's, shared by every listener).
	var f floodFigures
	restStart := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(restURL + "/")
	if err != nil {
		t.Fatalf("REST during the flood: %v", err)
	}
	resp.Body.Close()
	f.restTook = time.Since(restStart)

	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	held := len(conns)
	mu.Unlock()
	stopped := time.Now()
	attempts := 0
	for {
		attempts++
		res, err := pykmip(t, serverAt(addr), client, "1.4", "discover")
		if err == nil {
			f.served = time.Since(stopped)
			break
		}
		if time.Since(stopped) > 10*time.Second {
			t.Fatalf("PyKMIP not served 10 s after the flood stopped: %v\n%s", res, tail(p.log(), 20))
		}
		t.Logf("PyKMIP attempt %d after the flood: %v", attempts, res["error"])
	}
	if strings.Contains(p.log(), "listener stopped") {
		t.Fatalf("the KMIP listener stopped:\n%s", tail(p.log(), 20))
	}
	f.acceptErrs = metric(t, metricsURL, `keywarden_kmip_accept_errors_total{errno="EMFILE"}`)
	f.refused = metric(t, metricsURL, `keywarden_kmip_connections_refused_total{reason="max_connections"}`)
	f.timeouts = metric(t, metricsURL, `keywarden_kmip_tls_handshake_failures_total{reason="timeout"}`) +
		metric(t, metricsURL, `keywarden_kmip_tls_handshake_failures_total{reason="closed"}`)
	f.shed = metric(t, metricsURL, `keywarden_kmip_tls_handshake_failures_total{reason="shed"}`)
	logLines := strings.Count(p.log(), "TLS handshake failed") + strings.Count(p.log(), "accept failed") +
		strings.Count(p.log(), "refused at a cap")
	t.Logf("FIGURE flood: %d connections from %d addresses opened in %v (%d connects failed, %d held); "+
		"REST answered in %v during the flood; PyKMIP served %v after the flood stopped (%d attempt(s)); "+
		"counted: %v accept errors (EMFILE), %v unauthenticated connections shed for descriptors, %v refused at max_connections, "+
		"%v handshakes timed out or closed; %d log lines",
		total, sources, floodTook.Round(time.Millisecond), dialFail.Load(), held,
		f.restTook.Round(time.Millisecond), f.served.Round(time.Millisecond), attempts,
		f.acceptErrs, f.shed, f.refused, f.timeouts, logLines)
	if logLines > 20 {
		t.Errorf("%d log lines for the flood: not rate-limited", logLines)
	}
	return f
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// discoverBatch is discoverRequest with n batch items.
func discoverBatch(n int) []byte {
	one := discoverRequest()
	// Rebuild: header with Batch Count n, then n copies of the batch item.
	// Offsets follow discoverRequest's fixed layout: message header 8,
	// request header 64 (its Batch Count value at 8+8+40+8), item 32.
	hdr := append([]byte(nil), one[8:8+64]...)
	binary.BigEndian.PutUint32(hdr[8+40+8:], uint32(n))
	item := one[8+64:]
	body := append(hdr, bytes.Repeat(item, n)...)
	msg := append([]byte{0x42, 0x00, 0x78, 0x01, 0, 0, 0, 0}, body...)
	binary.BigEndian.PutUint32(msg[4:], uint32(len(body)))
	return msg
}

// TestListenerLimitsFromConfig: the kmip section's caps and deadline reach
// the running binary.
func TestListenerLimitsFromConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	data := t.TempDir()
	p, addr, metricsURL := serveKMIP(t, data, "  max_batch_items: 2\n  max_connections_per_source: 3\n  handshake_timeout: 3s\n")
	client := issueClient(t, data, "limits", "lee")

	c := dialRaw(t, addr, client)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for n, want := range map[int]bool{2: true, 3: false} {
		c.Write(discoverBatch(n))
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatalf("%d items: %v", n, err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
		io.ReadFull(c, body)
		if ok := bytes.Contains(body, successStatus); ok != want {
			t.Fatalf("%d items with max_batch_items 2: success %v", n, ok)
		}
		if !want && !bytes.Contains(body, []byte("at most 2 per message")) {
			t.Fatalf("the refusal does not name the cap: %q", body)
		}
	}
	if err := discover(c); err != nil {
		t.Fatalf("the connection after a refused batch: %v", err)
	}

	// Two more from this address reach the cap of 3; the next is closed.
	for range 2 {
		rawFrom(t, "127.0.0.1", addr)
	}
	time.Sleep(200 * time.Millisecond)
	over := rawFrom(t, "127.0.0.1", addr)
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if n, err := over.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a 4th connection from one address: %d %v", n, err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("the 4th connection was not refused at once (closed after %v)", time.Since(start))
	}
	waitMetric := func(series string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for metric(t, metricsURL, series) < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("%s not counted:\n%s", series, tail(p.log(), 10))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitMetric(`keywarden_kmip_connections_refused_total{reason="max_connections_per_source"}`)
	// The two silent ones time out after handshake_timeout (3 s).
	waitMetric(`keywarden_kmip_tls_handshake_failures_total{reason="timeout"}`)
}

func rawFrom(t *testing.T, src, addr string) net.Conn { return testserver.DialFrom(t, src, addr) }
