package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ovh "github.com/ovh/kmip-go"

	"github.com/keywarden/keywarden/tests/hungdisk"
	"github.com/keywarden/keywarden/tests/testserver"
)

// TestAuditDiskHangs: the audit trail on a disk that stops answering (a
// FUSE mount whose writes and fsyncs block in the kernel; the store is on
// another disk). Eight writers keep creating. No request hangs: changes
// go on while the trail's writer is within its stall bound, then are
// refused with REST 503 and a Barbican body, and KMIP Operation Failed;
// reads of keys already read go on. Once the disk answers, writes resume
// without a restart, every acknowledged create is readable and has its
// line on the trail, and `keywarden audit verify` passes. (A shutdown
// while the disk hangs is not tested: the kernel keeps a process whose
// write is stuck in a FUSE or NFS request from exiting, Go's or not.)
func TestAuditDiskHangs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE directly needs root")
	}
	disk := hungdisk.Mount(t)
	dir := t.TempDir()
	srv, cfg := startWithConfig(t, dir, "audit:\n  path: "+filepath.Join(disk.Dir, "audit.log")+"\n")
	kc := kmipClient(t, srv, "hang", "kim", "admin")

	c := newCreates(srv.URL, "hang")
	for i := range 10 {
		if code := c.create(fmt.Sprint("before ", i)); code != 201 {
			t.Fatalf("create before the hang: %d", code)
		}
	}
	read := c.acks[0]
	if got := readText(t, srv.URL, "hang", read.ref); got != read.payload { // its first read, a change
		t.Fatalf("payload %q", got)
	}

	disk.Hang()
	// Before the cleanups: a server blocked on the disk cannot be killed.
	defer disk.Answer()
	hung := time.Now()
	var wg sync.WaitGroup
	refusedAt := make(chan time.Duration, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Since(hung) < 20*time.Second; i++ {
				if c.create(fmt.Sprintf("hung %d %d %s", w, i, rand.Text())) != 201 {
					refusedAt <- time.Since(hung)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(refusedAt)
	var first time.Duration
	for d := range refusedAt {
		if first == 0 || d < first {
			first = d
		}
	}
	if first == 0 {
		t.Fatalf("creates went on for 20s on a hung audit disk (%d acknowledged)", len(c.acks))
	}
	if disk.Blocked() == 0 {
		t.Fatal("the audit writer never blocked on the hung disk")
	}
	if c.slowest > 10*time.Second {
		t.Fatalf("a create took %v on a hung audit disk: bounded by the stall wait plus the 5s retry wait", c.slowest)
	}
	wantRefusals(t, c.bodies, "audit trail")
	t.Logf("hung: first refusal after %v, slowest request %v, %d creates acknowledged, refusals %v",
		first.Round(time.Millisecond), c.slowest.Round(time.Millisecond), len(c.acks), c.bodies)

	// Still hung: KMIP refuses too; a key already read is served.
	start := time.Now()
	if got := readText(t, srv.URL, "hang", read.ref); got != read.payload {
		t.Fatalf("read while hung: %q", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a read took %v while the audit disk hung", d)
	}
	_, kerr := kc.Create().AES(256, ovh.CryptographicUsageEncrypt).ExecContext(context.Background())
	if kerr == nil || !strings.Contains(kerr.Error(), "OperationFailed") || !strings.Contains(kerr.Error(), "audit trail") {
		t.Fatalf("KMIP create while the audit disk hangs: %v", kerr)
	}

	// The disk answers: writes resume without a restart.
	disk.Answer()
	answered := time.Now()
	for c.create("after "+rand.Text()) != 201 {
		if time.Since(answered) > 20*time.Second {
			t.Fatalf("writes did not resume after the disk answered: %v", c.bodies)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resumed := time.Since(answered)
	c.readBack(t)
	srv.Stop(t)
	out, err := testserver.Run(t, "audit", "verify", "--data-dir", dir, "--config", cfg)
	if err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	lines := 0
	for _, e := range auditEntries(t, filepath.Join(disk.Dir, "audit.log")) {
		if e["action"] == "create" && e["outcome"] == "ok" && e["project"] == "hang" {
			lines++
		}
	}
	if lines != len(c.acks) {
		t.Fatalf("%d create records on the trail for %d acknowledged creates", lines, len(c.acks))
	}
	t.Logf("answered → first create after %v; %d acknowledged creates readable, each with its line; audit verify: %s",
		resumed.Round(time.Millisecond), len(c.acks), strings.TrimSpace(out))
}
