package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/audit"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

func open(t *testing.T, path string, opts audit.Options) *audit.Log {
	t.Helper()
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

func mustVerify(t *testing.T, path string) audit.Report {
	t.Helper()
	rep, err := audit.Verify(path)
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
	if rep.Records != 2000 || rep.LastSeq != 2000 || !rep.HeadChecked || rep.Partial {
		t.Fatalf("report %+v", rep)
	}
	// A restart continues the same chain.
	l = open(t, path, audit.Options{})
	l.Record(t.Context(), rec(1))
	if err := l.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, path); rep.Records != 2001 {
		t.Fatalf("after sync: %+v", rep)
	}
	l.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
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

// writeLog makes a closed log of n records and returns its lines.
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
	return bytes.SplitAfter(b, []byte("\n"))[:n]
}

func rewrite(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantBreak(t *testing.T, path string, line uint64, reason string) {
	t.Helper()
	_, err := audit.Verify(path)
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
		{"edited and rehashed", func(ls [][]byte) [][]byte {
			// Whoever edits a record and recomputes its hash breaks the next link.
			ls[4] = rehash(t, bytes.Replace(ls[4], []byte(`"user":"bob"`), []byte(`"user":"eve"`), 1))
			return ls
		}, 6, "does not chain"},
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

// rehash recomputes a line's own hash the way the writer does.
func rehash(t *testing.T, line []byte) []byte {
	t.Helper()
	i := bytes.LastIndex(line, []byte(`,"hash":"`))
	body := append(bytes.Clone(line[:i]), '}')
	h := sha256.Sum256(body)
	sum := hex.EncodeToString(h[:])
	return append(append(bytes.Clone(line[:i]), []byte(`,"hash":"`+sum+`"}`)...), '\n')
}

func TestTornTailRecovered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	lines := writeLog(t, path, 5)
	torn := append(bytes.Join(lines, nil), lines[4][:20]...) // a crash mid-write
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(path); err != nil || !rep.Partial {
		t.Fatalf("torn tail before restart: %+v %v", rep, err)
	}
	l := open(t, path, audit.Options{})
	l.Record(t.Context(), rec(99))
	l.Close()
	rep := mustVerify(t, path)
	if rep.Records != 7 || rep.Recovered != 1 || rep.Partial {
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
	drops := uint64(bytes.Count(b, []byte(`"action":"audit_dropped"`)))
	if got := rep.Records - drops + rep.Dropped; got != goroutines*each {
		t.Fatalf("%d records + %d dropped = %d; sent %d", rep.Records-drops, rep.Dropped, got, goroutines*each)
	}
	t.Logf("%d written, %d dropped under a queue of 1", rep.Records-drops, rep.Dropped)
}

// The trail of a real Service: who did what, never the material.
func TestServiceTrail(t *testing.T) {
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "kw.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root, _, _ := crypto.LoadOrCreateRootKey(filepath.Join(dir, "root.key"))
	path := filepath.Join(dir, "audit.log")
	l := open(t, path, audit.Options{})
	svc, err := kms.New(kms.Config{Store: st, Master: root, Audit: l})
	if err != nil {
		t.Fatal(err)
	}
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
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{})
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
