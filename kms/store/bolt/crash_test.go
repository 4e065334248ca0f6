//go:build unix

package bolt

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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

// TestCrash kills a writer process with SIGKILL mid-stream and checks that
// every write it acknowledged is in the file.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // in case we fail early

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

	acked := make(map[int]bool)
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
			if kill == nil {
				kill = time.After(300 * time.Millisecond)
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
	if len(acked) == 0 {
		t.Fatal("no acks before the kill")
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	for i := range acked {
		kv, err := s.Get(t.Context(), crashKey(i))
		if err != nil {
			t.Fatalf("acked key %d lost: %v", i, err)
		}
		if !bytes.Equal(kv.Value, crashValue(i)) || kv.Version != 1 {
			t.Fatalf("acked key %d: got %q v%d", i, kv.Value, kv.Version)
		}
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
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
	t.Logf("all %d acked writes survived SIGKILL; %d more were durable but not yet acked", len(acked), len(all)-len(acked))
}

// TestCrashChild is the writer process of TestCrash; skipped otherwise.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("writer mode of TestCrash")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var next atomic.Int64
	for range 64 {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				k := crashKey(i)
				err := s.Txn(context.Background(), []store.Cmp{{Key: k}}, []store.Op{store.Put(k, crashValue(i))})
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
