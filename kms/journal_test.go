package kms_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/audit"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

// journalLines returns the (action, secret id, j) of the log's lines.
func journalLines(t *testing.T, path string) (lines []audit.Entry) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, e)
	}
	return lines
}

// With bolt and an audit.Log, a change's record is its WAL note: the line
// carries j; notes the trail lost (its last lines, never fsynced on their
// own) come back from the WAL at the next kms.New, once each.
func TestJournalRecovery(t *testing.T) {
	dir := t.TempDir()
	dbPath, logPath := filepath.Join(dir, "keywarden.db"), filepath.Join(dir, "audit.log")
	root, _, err := crypto.LoadOrCreateRootKey(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(root.Close)
	open := func() (*kms.Service, *bolt.Store, *audit.Log) {
		t.Helper()
		st, err := bolt.Open(dbPath, bolt.Options{FlushInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		l, err := audit.Open(logPath, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := kms.New(kms.Config{Store: st, Master: root, Audit: l})
		if err != nil {
			t.Fatal(err)
		}
		return svc, st, l
	}
	svc, st, l := open()
	var ids []string
	for range 3 {
		sec := storeKey(t, svc, creator, kms.CreateRequest{Name: "j"})
		ids = append(ids, sec.ID)
	}
	// The store keeps its current WAL segment, notes and all.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var creates []audit.Entry
	for _, e := range journalLines(t, logPath) {
		if e.Action == "create" {
			creates = append(creates, e)
		}
	}
	if len(creates) != 3 || creates[0].J != 1 || creates[2].J != 3 || creates[2].SecretID != ids[2] {
		t.Fatalf("create lines %+v; want 3 with j 1..3", creates)
	}
	// Lose the last two lines, as a crash before their lazy fsync would
	// (and the head file that named them).
	data, _ := os.ReadFile(logPath)
	cut := len(data)
	for range 2 {
		cut = lastLineStart(data[:cut])
	}
	if err := os.WriteFile(logPath, data[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(logPath + ".head")

	svc, st, l = open()
	if got := l.LastJournal(); got != 1 {
		t.Fatalf("LastJournal = %d after the cut; want 1", got)
	}
	storeKey(t, svc, creator, kms.CreateRequest{Name: "after"})
	st.Close()
	l.Close()
	var js []uint64
	for _, e := range journalLines(t, logPath) {
		if e.J != 0 && e.Action != audit.HeaderAction {
			js = append(js, e.J)
		}
	}
	if len(js) != 4 || js[0] != 1 || js[1] != 2 || js[2] != 3 || js[3] != 4 {
		t.Fatalf("journal numbers on the trail %v; want 1 2 3 4", js)
	}
	key, _, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(logPath, key); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func lastLineStart(b []byte) int {
	i := len(b) - 1 // b ends with a newline
	for i > 0 && b[i-1] != '\n' {
		i--
	}
	return i
}
