package loadgen

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Baseline is the machine's own limits, measured in the same run as the
// figures they stand beside: what a server that does nothing but answer
// could do here, and what the disk's sync allows a durable write.
type Baseline struct {
	HTTP, TLS Result // bare net/http answering 32 bytes; the same over crypto/tls
	Sync      Result // one writer: 4 KiB write + fdatasync, in SyncDir
	SyncDir   string
}

// bareBody is the bare server's whole answer.
var bareBody = bytes.Repeat([]byte("k"), 32)

// MeasureBaseline runs the bare servers (children of binary self, empty:
// this executable; on loopback) with clients connections for d each, then
// the disk's sync rate in dir.
func MeasureBaseline(self string, clients int, d time.Duration, dir string) (*Baseline, error) {
	b := &Baseline{SyncDir: dir}
	// A bad sync dir is refused before seconds of measuring.
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("baseline: --sync-dir %s: not a directory (%v)", dir, err)
	}
	var err error
	if b.HTTP, err = bareRun(self, clients, d, false); err != nil {
		return nil, err
	}
	if b.TLS, err = bareRun(self, clients, d, true); err != nil {
		return nil, err
	}
	if b.Sync, err = syncRate(dir, d); err != nil {
		return nil, err
	}
	return b, nil
}

// bareRun drives a bare server as the REST workloads are driven (the same
// client, the same keep-alive connections).
func bareRun(self string, clients int, d time.Duration, withTLS bool) (Result, error) {
	tgt, pid, stop, err := startBare(self, withTLS)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	name := "bare net/http"
	if withTLS {
		name = "bare net/http + crypto/tls"
	}
	cpu0 := [2]time.Duration{processCPU(pid), processCPU(0)}
	res := run(tgt, clients, d, func(_ int, buf []byte) request {
		buf = append(buf, "GET / HTTP/1.1\r\nHost: "...)
		buf = append(buf, tgt.host...)
		buf = append(buf, "\r\n\r\n"...)
		return request{raw: buf, want: 200}
	})
	res.Op, res.ServerCPU, res.BenchCPU = name, cpuSince(pid, cpu0[0]), cpuSince(0, cpu0[1])
	if res.N == 0 {
		return res, fmt.Errorf("baseline: %s answered nothing: %s", name, res.FirstErr)
	}
	return res, nil
}

// selfSigned is a throw-away ECDSA certificate for 127.0.0.1 and the pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// syncBlocks is the size of the sync file in 4 KiB blocks: written once
// before the clock starts, so that every timed sync flushes data only (no
// block allocation, no size change), the floor under any durable commit.
const syncBlocks = 256

// syncRate is one writer overwriting 4 KiB blocks in turn, each followed by
// fdatasync, for d (at most 3 s: the figure settles fast and the disk is
// shared) in a temporary file in dir.
func syncRate(dir string, d time.Duration) (Result, error) {
	f, err := os.CreateTemp(dir, ".keywarden-bench-sync-")
	if err != nil {
		return Result{}, fmt.Errorf("baseline: the disk's sync rate in %s: %w", dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	rand.Read(block)
	for i := range syncBlocks {
		if _, err := f.WriteAt(block, int64(i)*4096); err != nil {
			return Result{}, fmt.Errorf("baseline: %s: %w", f.Name(), err)
		}
	}
	if err := f.Sync(); err != nil {
		return Result{}, fmt.Errorf("baseline: %s: %w", f.Name(), err)
	}
	d = min(d, 3*time.Second)
	res := Result{Op: "4 KiB write+fdatasync", ServerCPU: -1, BenchCPU: -1}
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		block[0] = byte(i)
		t0 := time.Now()
		if _, err := f.WriteAt(block, int64(i%syncBlocks)*4096); err != nil {
			return res, fmt.Errorf("baseline: %s: %w", f.Name(), err)
		}
		if err := fdatasync(f); err != nil {
			return res, fmt.Errorf("baseline: fdatasync %s: %w", f.Name(), err)
		}
		res.Lat = append(res.Lat, time.Since(t0))
		res.N++
	}
	res.Elapsed = time.Since(start)
	slices.Sort(res.Lat)
	abs, err := filepath.Abs(dir)
	if err == nil {
		res.Op += " in " + abs
	}
	return res, nil
}

// Write prints the baseline as the bench's table.
func (b *Baseline) Write(out io.Writer) error {
	fmt.Fprintln(out, "baseline: this machine's limits, measured now (bare servers in their own process, on loopback)")
	return WriteTable(out, []Result{b.HTTP, b.TLS, b.Sync})
}
