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

// TestBestEffortSyncs: best-effort records (payload reads, refusals) are
// not fsynced group by group but within bestEffortSyncEvery (100 ms), by
// the writer's timer when nothing else comes; a Commit is fsynced before
// it returns. Counted at the file system (FUSE), where the fsyncs arrive.
func TestBestEffortSyncs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE directly needs root")
	}
	disk := hungdisk.Mount(t)
	l := open(t, filepath.Join(disk.Dir, "audit.log"), audit.Options{})
	defer l.Close()
	time.Sleep(50 * time.Millisecond)
	before := disk.Fsyncs()
	start := time.Now()
	for i := range 100 { // 100 groups at one per ~2 ms
		l.Record(t.Context(), rec(i))
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(start)
	time.Sleep(250 * time.Millisecond) // the timer's fsync of the last ones
	n := disk.Fsyncs() - before
	// One per 100 ms, and the timer's; twice that leaves room for a loaded
	// machine's late wake-ups. Before, it was one per group: ~100.
	if limit := 2*int(took/(100*time.Millisecond)) + 3; n > limit || n == 0 {
		t.Fatalf("%d fsyncs for 100 best-effort records over %v; want 1..%d", n, took, limit)
	}
	t.Logf("%d fsyncs for 100 best-effort records over %v", n, took.Round(time.Millisecond))
	written, _ := l.Stats()
	if written < 100 {
		t.Fatalf("%d records written", written)
	}

	// After a pause the first record is fsynced at once; the next, within
	// 100 ms of that, by the timer: a hung disk catches its fsync.
	l.Record(t.Context(), rec(1000))
	time.Sleep(10 * time.Millisecond)
	l.Record(t.Context(), rec(1001))
	time.Sleep(10 * time.Millisecond) // written, not yet synced
	disk.Hang()
	defer disk.Answer()
	deadline := time.Now().Add(time.Second)
	for disk.Blocked() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no fsync of a lone best-effort record within 1s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	disk.Answer()

	// A Commit is durable when it returns.
	before = disk.Fsyncs()
	if err := l.Commit(t.Context(), rec(2000)); err != nil {
		t.Fatal(err)
	}
	if disk.Fsyncs() == before {
		t.Fatal("Commit returned before an fsync")
	}
}
