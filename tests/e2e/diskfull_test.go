package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ovh "github.com/ovh/kmip-go"

	"github.com/keywarden/keywarden/tests/testserver"
)

// TestDataDiskFull: the bolt file on a small filesystem of its own (a real
// tmpfs mount; the audit trail stays in the data dir on another disk), 16
// writers create secrets until the filesystem is full. Then state changes
// are refused with REST 503 and a Barbican body, and KMIP Operation Failed;
// reads go on; every acknowledged create is readable, no refused one is
// stored; after the filesystem is grown writes resume without a restart;
// `keywarden audit verify` passes.
func TestDataDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	mnt := filepath.Join(t.TempDir(), "store")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("we are root, but mount -t tmpfs failed: %v\n%s", err, out)
	}
	// Registered after TempDir: runs before its removal, after the server's kill.
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	srv, cfg := startWithConfig(t, dir, "store:\n  path: "+filepath.Join(mnt, "keywarden.db")+"\n")
	kc := kmipClient(t, srv, "full", "kim", "admin")

	type ack struct{ ref, payload string }
	var (
		mu      sync.Mutex
		acks    []ack
		refused []string // payloads of refused creates
		bodies  = map[string]int{}
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fails := 0; fails < 5; { // a few in a row: freed pages may still take a small write
				p := "p-" + rand.Text() + strings.Repeat("x", 200)
				code, b := createStatus(srv.URL, "full", []byte(p))
				mu.Lock()
				if code == 201 {
					acks = append(acks, ack{string(b), p})
					fails = 0
				} else {
					refused = append(refused, p)
					bodies[fmt.Sprintf("%d %s", code, b)]++
					fails++
				}
				mu.Unlock()
				if time.Since(start) > 30*time.Second {
					return
				}
			}
		}()
	}
	wg.Wait()
	fill := time.Since(start)
	t.Logf("filled in %v: %d creates acknowledged, %d refused: %v", fill.Round(time.Millisecond), len(acks), len(refused), bodies)
	if len(acks) < 100 || len(refused) == 0 {
		t.Fatalf("%d acknowledged, %d refused: the store never filled", len(acks), len(refused))
	}
	wantRefusals(t, bodies, "the store is full")

	// Full: still refused, over both protocols; reads go on.
	if code, b := createStatus(srv.URL, "full", []byte(strings.Repeat("y", 2000))); code != 503 {
		t.Fatalf("create on a full store: %d %s", code, b)
	}
	refused = append(refused, "y…")
	ctx := context.Background()
	_, kerr := kc.Create().AES(256, ovh.CryptographicUsageEncrypt).WithName("full-key").ExecContext(ctx)
	if kerr == nil || !strings.Contains(kerr.Error(), "OperationFailed") || !strings.Contains(kerr.Error(), "the store is full") {
		t.Fatalf("KMIP create on a full store: %v", kerr)
	}
	t.Logf("KMIP on a full store: %v", kerr)
	checkAcks := func(when string, kmipKeys int) {
		t.Helper()
		for _, a := range acks {
			if got := readText(t, srv.URL, "full", a.ref); got != a.payload {
				t.Fatalf("%s: a payload differs", when)
			}
		}
		if n := countSecrets(t, srv.URL, "full"); n != len(acks)+kmipKeys {
			t.Fatalf("%s: %d secrets listed, %d acknowledged (REST and KMIP)", when, n, len(acks)+kmipKeys)
		}
	}
	checkAcks("full", 0)

	// Space returns: writes resume without a restart.
	if out, err := exec.Command("mount", "-o", "remount,size=8m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v\n%s", err, out)
	}
	grown := time.Now()
	var resumed time.Duration
	for {
		p := "after-" + rand.Text()
		code, b := createStatus(srv.URL, "full", []byte(p))
		if code == 201 {
			resumed = time.Since(grown)
			acks = append(acks, ack{string(b), p})
			break
		}
		if time.Since(grown) > 20*time.Second {
			t.Fatalf("writes did not resume: %d %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := kc.Create().AES(256, ovh.CryptographicUsageEncrypt).WithName("full-key").ExecContext(ctx); err != nil {
		t.Fatalf("KMIP create after space returned: %v", err)
	}
	checkAcks("after space returned", 1)
	srv.Stop(t)

	// A restart finds exactly the acknowledged secrets; the trail verifies.
	srv = testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir, Args: []string{"--config", cfg}})
	checkAcks("after a restart", 1)
	srv.Stop(t)
	out, err := testserver.Run(t, "audit", "verify", "--data-dir", dir, "--config", cfg)
	if err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	// The bolt store journals each change's record in the change's own WAL
	// record: a refused change left none, an acknowledged one exactly one.
	trail, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(trail), `"outcome":"aborted"`); n != 0 {
		t.Fatalf("%d aborted changes on the trail: a refused change left a record", n)
	}
	creates := 0
	for _, e := range auditEntries(t, filepath.Join(dir, "audit.log")) {
		if e["action"] == "create" && e["outcome"] == "ok" && e["project"] == "full" {
			creates++
		}
	}
	if creates != len(acks)+1 { // +1: the KMIP key made once space returned
		t.Fatalf("%d create records for %d acknowledged creates", creates, len(acks)+1)
	}
	t.Logf("space returned → first create acknowledged after %v; %d acknowledged creates all readable, none of the %d refused stored; audit verify: %s",
		resumed.Round(time.Millisecond), len(acks), len(refused), strings.TrimSpace(out))
}
