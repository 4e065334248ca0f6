package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/tests/hungdisk"
)

// TestDataDiskHangs: the store (bbolt file and WAL) on a disk that stops
// answering (a FUSE mount whose writes and fsyncs block in the kernel; the
// audit trail is on another disk). Eight writers keep creating. The commit
// under way when the disk stopped waits for it, as it must; every other
// create is refused within the store's write bound (10 s) with REST 503
// and a Barbican body, and is not stored. Reads of keys already read go
// on. Once the disk answers, the waiting commit completes and writes
// resume without a restart; exactly the acknowledged creates are stored.
func TestDataDiskHangs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE directly needs root")
	}
	disk := hungdisk.Mount(t)
	dir := t.TempDir()
	srv, _ := startWithConfig(t, dir, "store:\n  path: "+filepath.Join(disk.Dir, "keywarden.db")+"\n")

	c := newCreates(srv.URL, "hang")
	for i := range 10 {
		if code := c.create(fmt.Sprint("before ", i)); code != 201 {
			t.Fatalf("create before the hang: %d", code)
		}
	}
	read := c.acks[0]
	if got := readText(t, srv.URL, "hang", read.ref); got != read.payload {
		t.Fatalf("payload %q", got)
	}
	time.Sleep(300 * time.Millisecond) // the first read's lazy write synced

	disk.Hang()
	defer disk.Answer() // before the cleanups: a server blocked on the disk cannot be killed
	hung := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Since(hung) < 12*time.Second; i++ {
				if c.create(fmt.Sprintf("hung %d %d %s", w, i, rand.Text())) != 201 && time.Since(hung) > 11*time.Second {
					return
				}
			}
		}()
	}
	// Reads of a key already read go on meanwhile.
	time.Sleep(time.Second)
	start := time.Now()
	if got := readText(t, srv.URL, "hang", read.ref); got != read.payload {
		t.Fatalf("read while hung: %q", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a read took %v while the data disk hung", d)
	}
	time.Sleep(12*time.Second - time.Since(hung))
	c.mu.Lock()
	refusedWhileHung := len(c.bodies)
	c.mu.Unlock()
	disk.Answer()
	answered := time.Now()
	wg.Wait()
	t.Logf("hung 12s: %d creates acknowledged in all, refusals %v, slowest answer %v", len(c.acks), c.bodies, c.slowest.Round(time.Millisecond))
	if refusedWhileHung == 0 {
		t.Fatal("no create was refused while the data disk hung")
	}
	wantRefusals(t, c.bodies, "the store did not take this change")

	for c.create("after "+rand.Text()) != 201 {
		if time.Since(answered) > 20*time.Second {
			t.Fatalf("writes did not resume after the disk answered: %v", c.bodies)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.readBack(t)
}
