package audit_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/audit"
	"github.com/keywarden/keywarden/kms/kmstest"
)

func open(t *testing.T, path string, opts audit.Options) *audit.Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := audit.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func rec(i int) kms.AuditRecord {
	return kms.AuditRecord{Time: time.Now(), Project: "p1", User: "bob", Action: "read_payload",
		SecretID: fmt.Sprintf("id-%d", i), Outcome: "ok", RequestID: fmt.Sprintf("req-%d", i)}
}

// keyOf is the audit key Open made next to the log at path.
func keyOf(t *testing.T, path string) []byte {
	t.Helper()
	key, err := audit.LoadKey(filepath.Join(filepath.Dir(path), "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func mustVerify(t *testing.T, path string) audit.Report {
	t.Helper()
	rep, err := audit.Verify(path, keyOf(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestAppendVerifyReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, audit.Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				l.Record(t.Context(), rec(g*1000+i))
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, path)
	// 2000 records after the file's header.
	if rep.Records != 2001 || rep.LastSeq != 2001 || rep.Files != 1 || !rep.HeadChecked || rep.Partial {
		t.Fatalf("report %+v", rep)
	}
	// A restart continues the same chain.
	l = open(t, path, audit.Options{})
	l.Record(t.Context(), rec(1))
	if err := l.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, path); rep.Records != 2002 {
		t.Fatalf("after sync: %+v", rep)
	}
	l.Close()
	for _, p := range []string{path, filepath.Join(filepath.Dir(path), "audit.key")} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v", p, fi.Mode().Perm())
		}
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, audit.Options{})
	defer l.Close()
	if _, err := audit.Open(path, audit.Options{}); err == nil {
		t.Fatal("a second writer opened the log")
	}
}

// writeLog makes a closed log of n records and returns its lines, the
// header first.
func writeLog(t *testing.T, path string, n int) [][]byte {
	t.Helper()
	l := open(t, path, audit.Options{})
	for i := range n {
		l.Record(t.Context(), rec(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	return bytes.SplitAfter(b, []byte("\n"))[:n+1]
}

func rewrite(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantBreak(t *testing.T, path string, line uint64, reason string) {
	t.Helper()
	_, err := audit.Verify(path, keyOf(t, path))
	var ve *audit.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("tampering not detected: %v", err)
	}
	if ve.Line != line || !strings.Contains(ve.Reason, reason) {
		t.Fatalf("got %v; want line %d, %q", err, line, reason)
	}
}

func TestTamperingDetected(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		edit   func([][]byte) [][]byte
		line   uint64
		reason string
	}{
		{"edited", func(ls [][]byte) [][]byte {
			ls[4] = bytes.Replace(ls[4], []byte(`"user":"bob"`), []byte(`"user":"eve"`), 1)
			return ls
		}, 5, "was changed"},
		{"edited and rehashed without the key", func(ls [][]byte) [][]byte {
			ls[4] = rehash(nil, bytes.Replace(ls[4], []byte(`"user":"bob"`), []byte(`"user":"eve"`), 1))
			return ls
		}, 5, "was changed"},
		{"edited and rehashed with the key", func(ls [][]byte) [][]byte {
			// Even the key holder who edits a record breaks the next link.
			ls[4] = rehash(keyOf(t, filepath.Join(dir, "x")), bytes.Replace(ls[4], []byte(`"user":"bob"`), []byte(`"user":"eve"`), 1))
			return ls
		}, 6, "does not chain"},
		{"header removed", func(ls [][]byte) [][]byte { return ls[1:] }, 1, "was changed"},
		{"removed", func(ls [][]byte) [][]byte { return append(ls[:3], ls[4:]...) }, 4, "missing"},
		{"reordered", func(ls [][]byte) [][]byte { ls[2], ls[3] = ls[3], ls[2]; return ls }, 3, "missing"},
		{"duplicated", func(ls [][]byte) [][]byte { return append(ls[:4], ls[3:]...) }, 5, "reordered or repeated"},
		{"member added", func(ls [][]byte) [][]byte {
			ls[1] = bytes.Replace(ls[1], []byte(`{"seq"`), []byte(`{"x":1,"seq"`), 1)
			return ls
		}, 2, "was changed"},
		{"last removed", func(ls [][]byte) [][]byte { return ls[:len(ls)-1] }, 0, "removed from its end"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			rewrite(t, path, tc.edit(writeLog(t, path, 10)))
			wantBreak(t, path, tc.line, tc.reason)
		})
	}
}

// rehash recomputes a line's own hash the way the writer does: HMAC under
// key, or the unkeyed SHA-256 of old versions when key is nil.
func rehash(key, line []byte) []byte {
	i := bytes.LastIndex(line, []byte(`,"hash":"`))
	body := append(bytes.Clone(line[:i]), '}')
	var h []byte
	if key == nil {
		s := sha256.Sum256(body)
		h = s[:]
	} else {
		m := hmac.New(sha256.New, key)
		m.Write(body)
		h = m.Sum(nil)
	}
	return append(append(bytes.Clone(line[:i]), []byte(`,"hash":"`+hex.EncodeToString(h)+`"}`)...), '\n')
}

func TestTornTailRecovered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	lines := writeLog(t, path, 5)
	torn := append(bytes.Join(lines, nil), lines[4][:20]...) // a crash mid-write
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(path, keyOf(t, path)); err != nil || !rep.Partial {
		t.Fatalf("torn tail before restart: %+v %v", rep, err)
	}
	l := open(t, path, audit.Options{})
	l.Record(t.Context(), rec(99))
	l.Close()
	rep := mustVerify(t, path)
	if rep.Records != 8 || rep.Recovered != 1 || rep.Partial { // header, 5, recovered, 1
		t.Fatalf("after recovery: %+v", rep)
	}
}

// Every record sent is either on the trail or counted as dropped on it.
func TestBackpressureAccounting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, audit.Options{QueueSize: 1, MaxBatch: 1, MaxWait: time.Microsecond})
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	start := time.Now()
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Record(context.Background(), rec(i))
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Record blocked the callers for %v", d)
	}
	l.Close()
	rep := mustVerify(t, path)
	b, _ := os.ReadFile(path)
	ours := rep.Records - uint64(bytes.Count(b, []byte(`"action":"audit_dropped"`))) - 1 // and the header
	if got := ours + rep.Dropped; got != goroutines*each {
		t.Fatalf("%d records + %d dropped = %d; sent %d", ours, rep.Dropped, got, goroutines*each)
	}
	t.Logf("%d written, %d dropped under a queue of 1", ours, rep.Dropped)
}

// A failed write (the device full) loses no count: every record sent is on
// the trail or counted as dropped on it, also when the audit_dropped record
// carrying the count failed to be written too.
func TestWriteFailureAccounting(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("mounting a tmpfs needs root: %v %s", err, out)
		}
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "audit.log")
	l := open(t, path, audit.Options{})
	ctx := context.Background()
	sent := 0
	send := func() {
		l.Record(ctx, rec(sent))
		sent++
		l.Sync(ctx)
	}
	send()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range [][]byte{make([]byte, 4096), make([]byte, 1)} {
		for err == nil {
			_, err = f.Write(chunk)
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("filling %s: %v", dir, err)
		}
		err = nil
	}
	f.Close()
	for range 40 { // more than the log's last page holds
		send()
	}
	if l.Err() == nil {
		t.Fatal("no write failed on a full device")
	}
	os.Remove(filler)
	send()
	l.Close()
	rep := mustVerify(t, path)
	b, _ := os.ReadFile(path)
	ours := rep.Records - uint64(bytes.Count(b, []byte(`"action":"audit_dropped"`))) - 1 // and the header
	if ours+rep.Dropped != uint64(sent) || rep.Dropped < 2 {
		t.Fatalf("%d records + %d dropped; sent %d", ours, rep.Dropped, sent)
	}
	t.Logf("%d written, %d dropped on a full device", ours, rep.Dropped)
}

// The trail of a real Service: who did what, never the material.
func TestServiceTrail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, audit.Options{})
	svc := kmstest.Service(t, kms.Config{Audit: l})
	who := kms.Identity{Project: "p1", User: "bob", Roles: []string{kms.RoleCreator}}
	ctx := kms.WithRequestID(t.Context(), "req-42")
	secret := "TOP-SECRET-PASSPHRASE-VALUE"
	sec, err := svc.CreateSecret(ctx, who, kms.CreateRequest{Type: kms.Passphrase, Payload: []byte(secret), ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	svc.GetPayload(ctx, who, sec.ID)
	c := kms.Consumer{Service: "volume", ResourceType: "volume", ResourceID: "v1"}
	svc.AddConsumer(ctx, who, sec.ID, c)
	svc.CloneSecret(ctx, who, sec.ID, kms.CloneRequest{})
	svc.DeleteSecret(ctx, who, sec.ID, false) // refused: in use
	svc.RemoveConsumer(ctx, who, sec.ID, c)
	svc.DeleteSecret(ctx, who, sec.ID, false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, path)
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte(secret)) {
		t.Fatal("the audit log holds key material")
	}
	for _, want := range []string{`"action":"create"`, `"action":"read_payload"`, `"action":"consumer_add"`,
		`"action":"clone"`, `"action":"delete","secret_id":"` + sec.ID + `","outcome":"conflict"`,
		`"action":"consumer_remove"`, `"action":"delete","secret_id":"` + sec.ID + `","outcome":"ok"`,
		`"user":"bob","project":"p1"`, `"request_id":"req-42"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("trail lacks %s", want)
		}
	}
	if rep.Records < 8 {
		t.Fatalf("%d records", rep.Records)
	}
}

// BenchmarkRecord is the cost on the hot path (queueing) with the writer
// fsyncing in groups behind it.
func BenchmarkRecord(b *testing.B) {
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	r := rec(1)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Record(context.Background(), r)
		}
	})
	b.StopTimer()
	l.Close()
	written, dropped := l.Stats()
	b.ReportMetric(float64(dropped), "dropped")
	b.ReportMetric(float64(written), "written")
}

// BenchmarkRecordRotating is BenchmarkRecord with a file rotated every
// MiB (about 3,500 records), and the slowest single Record call reported:
// rotation runs on the writer, so callers should not feel it.
func BenchmarkRecordRotating(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{MaxBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	r := rec(1)
	var slowest atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		var worst time.Duration
		for pb.Next() {
			t0 := time.Now()
			l.Record(context.Background(), r)
			worst = max(worst, time.Since(t0))
		}
		for {
			if s := slowest.Load(); int64(worst) <= s || slowest.CompareAndSwap(s, int64(worst)) {
				break
			}
		}
	})
	b.StopTimer()
	l.Close()
	written, dropped := l.Stats()
	b.ReportMetric(float64(dropped), "dropped")
	b.ReportMetric(float64(written), "written")
	b.ReportMetric(float64(l.Rotations()), "rotations")
	b.ReportMetric(float64(slowest.Load())/1e3, "max-µs")
}
