package kms_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/audit"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

// holdAudit is memAudit whose Commit of a fresh_clear waits for release.
type holdAudit struct {
	*memAudit
	entered, release chan struct{}
}

func (h *holdAudit) Commit(ctx context.Context, r kms.AuditRecord) error {
	if r.Action == "fresh_clear" {
		h.entered <- struct{}{}
		<-h.release
	}
	return h.memAudit.Commit(ctx, r)
}

// TestFreshClearOnce: while one read clears Fresh, another read of the same
// key answers at once, not fresh, and writes nothing: one clear in all.
func TestFreshClearOnce(t *testing.T) {
	a := &holdAudit{memAudit: &memAudit{}, entered: make(chan struct{}), release: make(chan struct{})}
	svc := newServiceWith(t, kms.Config{Audit: a})
	sec := storeKey(t, svc, creator, kms.CreateRequest{})
	first := make(chan error, 1)
	go func() {
		_, pt, err := svc.GetPayload(ctx, creator, sec.ID)
		crypto.Zero(pt)
		first <- err
	}()
	<-a.entered // the first read's clear is in flight
	second := make(chan error, 1)
	go func() {
		got, pt, err := svc.GetPayload(ctx, creator, sec.ID)
		crypto.Zero(pt)
		if err == nil && got.Fresh {
			err = fmt.Errorf("the second read answered a fresh object")
		}
		second <- err
	}()
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-a.entered:
		t.Fatal("a second read began a second clear")
	case <-time.After(5 * time.Second):
		t.Fatal("the second read waited for the first one's clear")
	}
	close(a.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := countActions(a.memAudit, "fresh_clear", "ok"); n != 1 {
		t.Fatalf("%d fresh_clear records; want 1", n)
	}
	if got, _ := svc.GetSecret(ctx, creator, sec.ID, kms.View{}); got.Fresh {
		t.Fatal("still fresh after the clear")
	}
}

// freshKillEnv switches TestFreshClearKilled into its child's part; it
// names the data directory.
const freshKillEnv = "KEYWARDEN_FRESH_KILL_DIR"

// openJournaled opens kms on bolt (no flush: only a durable write would
// sync the WAL) with an audit.Log, as `keywarden serve` does.
func openJournaled(t *testing.T, dir string) (*kms.Service, *bolt.Store, *audit.Log) {
	t.Helper()
	root, _, err := crypto.LoadOrCreateRootKey(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(root.Close)
	st, err := bolt.Open(filepath.Join(dir, "keywarden.db"), bolt.Options{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kms.New(kms.Config{Store: st, Master: root, Audit: l})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, l
}

// TestFreshClearKilled: the first read of a key clears Fresh without a
// sync of the WAL; the process is killed right after it answered; at
// the restart the clear is there, and its audit line (recovered from the
// WAL note) carries its journal number.
func TestFreshClearKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreshClearKilledChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), freshKillEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var id string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "READ "); ok {
			id = v
			break
		}
	}
	if id == "" {
		cmd.Wait()
		t.Fatalf("child read nothing; stderr:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	svc, st, l := openJournaled(t, dir)
	got, err := svc.GetSecret(ctx, creator, id, kms.View{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Fresh {
		t.Fatal("after the kill the key is fresh again: the clear was lost")
	}
	st.Close()
	l.Close()
	var clear *audit.Entry
	for _, e := range journalLines(t, filepath.Join(dir, "audit.log")) {
		if e.Action == "fresh_clear" && e.SecretID == id {
			clear = &e
		}
	}
	if clear == nil || clear.J != 2 || clear.Outcome != "ok" {
		t.Fatalf("fresh_clear line after the kill: %+v; want ok with j 2", clear)
	}
}

// TestFreshClearKilledChild creates a key, reads it once, says so and
// waits to be killed; skipped otherwise.
func TestFreshClearKilledChild(t *testing.T) {
	dir := os.Getenv(freshKillEnv)
	if dir == "" {
		t.Skip("the child of TestFreshClearKilled")
	}
	svc, st, _ := openJournaled(t, dir)
	sec := storeKey(t, svc, creator, kms.CreateRequest{})
	syncs := st.Stats().WALSyncs
	got, pt, err := svc.GetPayload(ctx, creator, sec.ID)
	if err != nil || got.Fresh {
		t.Fatalf("first read: fresh %v, %v", got != nil && got.Fresh, err)
	}
	crypto.Zero(pt)
	if n := st.Stats().WALSyncs - syncs; n != 0 {
		t.Fatalf("the first read synced the WAL %d times", n)
	}
	os.Stdout.WriteString("READ " + sec.ID + "\n")
	time.Sleep(time.Minute)
	t.Fatal("not killed")
}
