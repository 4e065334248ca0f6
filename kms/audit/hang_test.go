package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms/audit"
	"github.com/keywarden/keywarden/tests/hungdisk"
)

// TestJournalOnHungDisk: the trail's file on a disk that stops answering
// (a real FUSE mount). Append never blocks, even past the queue's size
// (it is called from the store's committer); JournalErr says so once the
// writer's write has gone unanswered for StallAfter; when the disk answers,
// every record is written in order (Verify checks j runs on) and
// JournalErr clears.
func TestJournalOnHungDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE directly needs root")
	}
	disk := hungdisk.Mount(t)
	path := filepath.Join(disk.Dir, "audit.log")
	l := open(t, path, audit.Options{QueueSize: 4, MaxBatch: 2, StallAfter: 200 * time.Millisecond})
	for j := uint64(1); j <= 3; j++ {
		l.Append(rec(int(j)), j)
	}
	if err := l.JournalSync(t.Context()); err != nil {
		t.Fatal(err)
	}

	disk.Hang()
	defer disk.Answer() // before the cleanups, should a check fail
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		for j := uint64(4); j <= 60; j++ { // far past QueueSize
			l.Append(rec(int(j)), j)
		}
	}()
	select {
	case <-appended:
	case <-time.After(5 * time.Second):
		t.Fatal("Append blocked on a hung disk: the store's committer would stop")
	}
	if err := l.JournalErr(); err != nil {
		t.Logf("JournalErr at once: %v", err) // records beyond the queue: already behind
	}
	deadline := time.Now().Add(5 * time.Second)
	for disk.Blocked() == 0 || l.JournalErr() == nil || !strings.Contains(l.JournalErr().Error(), "has not completed for") {
		if time.Now().After(deadline) {
			t.Fatalf("blocked %d, JournalErr %v: the stall was not reported", disk.Blocked(), l.JournalErr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("while hung: %v", l.JournalErr())
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	if err := l.JournalSync(ctx); err == nil {
		t.Fatal("JournalSync succeeded while the disk hangs")
	}
	cancel()

	disk.Answer()
	if err := l.JournalSync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := l.JournalErr(); err != nil {
		t.Fatalf("JournalErr after the disk answered: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, path)
	l = open(t, path, audit.Options{})
	defer l.Close()
	if got := l.LastJournal(); got != 60 {
		t.Fatalf("LastJournal = %d after 60 records; want 60", got)
	}
	t.Logf("%d records, in order", rep.Records)
}
