//go:build unix

package bolt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keywarden/keywarden/kms/store"
)

// crashEnv switches TestCrashChild into writer mode; it names the file.
const crashEnv = "KEYWARDEN_BOLT_CRASH_DB"

func crashKey(i int) string { return fmt.Sprintf("crash/%07d", i) }

// crashValue is deterministic and varies in size, so a torn or misplaced
// write would not compare equal.
func crashValue(i int) []byte {
	return bytes.Repeat([]byte(strconv.Itoa(i)+":"), 1+i%97)
}

// crashFrom gives the child the first index it writes (one per round).
const crashFrom = "KEYWARDEN_BOLT_CRASH_FROM"

// crashLazy, set, makes the child write with TxnNoteLazy only.
const crashLazy = "KEYWARDEN_BOLT_CRASH_LAZY"

// crashCounter counts the crash/ keys: every write adds 1 to it in the
// same transaction.
const crashCounter = "count/crash"

// TestCrash kills a writer process with SIGKILL at random moments, over
// several rounds on the same store (the child flushes bbolt every few ms,
// so kills land during flushes and WAL appends alike), and checks after
// each that every write it acknowledged is there, the counter added with
// each write equals the keys present, and the note of every write is in
// the journal, numbered without a gap.
func TestCrash(t *testing.T) { testCrash(t, "") }

// TestCrashLazy is TestCrash with lazy writes only (TxnNoteLazy) and no
// flush: nothing is ever synced, yet every acknowledged write and its note
// survive a kill of the process, the kernel holding what write(2) gave it.
func TestCrashLazy(t *testing.T) { testCrash(t, "1") }

func testCrash(t *testing.T, lazy string) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := make(map[int]bool)
	from := 0
	for round := range 4 {
		delay := time.Duration(20+rand.IntN(400)) * time.Millisecond
		n := crashRound(t, path, from, delay, acked, crashLazy+"="+lazy)
		from += n + 100000 // a fresh range: the unacked writes of a round may be durable
		// Killed, the file may lag its WAL: a build without one must refuse it.
		if v := fileSchema(t, path); v != schemaJournaled {
			t.Fatalf("round %d: after the kill the file says schema %d, want %d", round, v, schemaJournaled)
		}
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		checkCrash(t, s, acked)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if v := fileSchema(t, path); v != schemaVersion {
			t.Fatalf("round %d: after a clean Close the file says schema %d, want %d", round, v, schemaVersion)
		}
		t.Logf("round %d: killed after %v; %d acked writes in all survived", round, delay, len(acked))
	}
}

// crashRound runs the child from index from, kills it delay after its
// first ack, and adds what it acknowledged to acked.
func crashRound(t *testing.T, path string, from int, delay time.Duration, acked map[int]bool, env ...string) int {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, crashFrom+"="+strconv.Itoa(from))
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // in case we fail early

	acks := make(chan int)
	go func() {
		defer close(acks)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
				i, err := strconv.Atoi(n)
				if err != nil {
					panic(fmt.Sprintf("bad ack line %q", sc.Text()))
				}
				acks <- i
			}
		}
	}()

	got := 0
	var kill <-chan time.Time
	timeout := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case i, ok := <-acks:
			if !ok {
				done = true
				break
			}
			acked[i] = true
			got++
			if kill == nil {
				kill = time.After(delay)
			}
		case <-kill:
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			kill = nil
			// Keep reading: an ACK still in the pipe was printed after its
			// Txn returned, so it counts.
		case <-timeout:
			t.Fatalf("child gave no ack / did not exit; stderr:\n%s", stderr.String())
		}
	}
	err = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed (%v); stderr:\n%s", err, stderr.String())
	}
	if got == 0 {
		t.Fatal("no acks before the kill")
	}
	return got
}

func checkCrash(t *testing.T, s *Store, acked map[int]bool) {
	t.Helper()
	for i := range acked {
		kv, err := s.Get(t.Context(), crashKey(i))
		if err != nil {
			t.Fatalf("acked key %d lost: %v", i, err)
		}
		if !bytes.Equal(kv.Value, crashValue(i)) || kv.Version != 1 {
			t.Fatalf("acked key %d: got %q v%d", i, kv.Value, kv.Version)
		}
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("file inconsistent after kill: %v", err)
	}
	all, err := s.List(t.Context(), "crash/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Get(t.Context(), crashCounter)
	if err != nil || store.CounterValue(c.Value) != int64(len(all)) {
		t.Fatalf("counter = %d (%v), %d keys present", store.CounterValue(c.Value), err, len(all))
	}
	// No Follow: every note is still in the journal, numbered 1, 2, ...
	notes := map[string]bool{}
	for i, n := range s.Notes() {
		if n.Seq != uint64(i+1) {
			t.Fatalf("note %d has number %d: a gap", i+1, n.Seq)
		}
		notes[string(n.Data)] = true
	}
	if len(notes) != len(all) {
		t.Fatalf("%d notes for %d writes", len(notes), len(all))
	}
	for i := range acked {
		if !notes[crashKey(i)] {
			t.Fatalf("acked write %d has no note", i)
		}
	}
}

// TestCrashChild is the writer process of TestCrash; skipped otherwise.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("writer mode of TestCrash")
	}
	from, _ := strconv.Atoi(os.Getenv(crashFrom))
	opts, txn := Options{FlushInterval: 3 * time.Millisecond}, (*Store).TxnNote
	if os.Getenv(crashLazy) != "" {
		// No flush and no durable write: no sync would cover them.
		opts, txn = Options{FlushInterval: time.Hour}, (*Store).TxnNoteLazy
	}
	s, err := Open(path, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var next atomic.Int64
	next.Store(int64(from))
	for range 64 {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				k := crashKey(i)
				err := txn(s, context.Background(), []store.Cmp{{Key: k}},
					[]store.Op{store.Put(k, crashValue(i)), store.Add(crashCounter, 1)}, []byte(k))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				// One write(2) per line: lines from writers never interleave.
				os.Stdout.WriteString("ACK " + strconv.Itoa(i) + "\n")
			}
		}()
	}
	time.Sleep(time.Minute) // the parent kills us long before
	fmt.Fprintln(os.Stderr, "not killed")
	os.Exit(2)
}

// fileSchema reads the schema version of a closed store file with bbolt
// alone, as a build before the WAL would.
func fileSchema(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v uint64
	db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(metaBucket).Get(schemaKey); len(b) == 8 {
			v = binary.BigEndian.Uint64(b)
		}
		return nil
	})
	return v
}
