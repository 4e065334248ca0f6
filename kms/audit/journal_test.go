package audit_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/kms/audit"
)

// Journal records: Append writes them in order with j; LastJournal finds
// the last j at Open, in the current file or, past a rotation, in its
// header; Verify accepts j running on across files and catches a gap.
func TestJournalAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, audit.Options{MaxBytes: 2048})
	for i := 1; i <= 20; i++ {
		l.Append(rec(i), uint64(i))
		if i%5 == 0 {
			l.Record(t.Context(), rec(100+i)) // lines without j between
		}
	}
	if err := l.JournalSync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l.Rotations() == 0 {
		t.Fatal("no rotation: the header's j is not tested")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.JournalSync(t.Context()); err == nil {
		t.Fatal("JournalSync after Close succeeded: the store would drop notes not on the trail")
	}
	rep := mustVerify(t, path)
	l = open(t, path, audit.Options{MaxBytes: 2048})
	if got := l.LastJournal(); got != 20 {
		t.Fatalf("LastJournal = %d; want 20", got)
	}
	l.Close()
	t.Logf("%d records in %d files", rep.Records, rep.Files)

	// A new file right after a rotation holds only its header: its j says.
	path = filepath.Join(t.TempDir(), "audit.log")
	l = open(t, path, audit.Options{MaxBytes: 1})
	l.Append(rec(1), 7)
	l.Append(rec(2), 8)
	l.JournalSync(t.Context())
	l.Close()
	l = open(t, path, audit.Options{MaxBytes: 1})
	if got := l.LastJournal(); got != 8 {
		t.Fatalf("LastJournal after rotations = %d; want 8", got)
	}
	l.Close()
	mustVerify(t, path)

	// A missing journal record breaks nothing in the chain but j.
	path = filepath.Join(t.TempDir(), "audit.log")
	l = open(t, path, audit.Options{})
	l.Append(rec(1), 1)
	l.Append(rec(3), 3)
	l.Close()
	_, err := audit.Verify(path, keyOf(t, path))
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || !strings.Contains(ve.Reason, "journal record 3 follows journal record 1") {
		t.Fatalf("Verify of a j gap = %v", err)
	}
}
