package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keywarden/keywarden/kms/store"
)

// TestDiskFull runs the store on a real 512 KiB tmpfs: 8 writers fill it.
// A batch that does not fit fails every Txn in it with store.ErrFull and
// writes none of them; the file keeps serving reads; once the filesystem is
// grown the same open store commits again, and a reopen finds exactly the
// acknowledged keys.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("we are root, but mount -t tmpfs failed: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	path := filepath.Join(mnt, "keywarden.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	val := make([]byte, 900)
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		refused  = map[string]bool{}
		otherErr error
		wg       sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, fails := 0, 0; fails < 3 && i < 5000; i++ {
				k := fmt.Sprintf("k/%d/%d", w, i)
				err := s.Txn(ctx, nil, []store.Op{store.Put(k, val)})
				mu.Lock()
				switch {
				case err == nil:
					acked[k], fails = true, 0
				case errors.Is(err, store.ErrFull):
					refused[k] = true
					fails++
				default:
					otherErr = err
				}
				stop := otherErr != nil
				mu.Unlock()
				if stop {
					return
				}
			}
		}()
	}
	wg.Wait()
	if otherErr != nil {
		t.Fatalf("a write failed otherwise than ErrFull: %v", otherErr)
	}
	if len(acked) < 100 || len(refused) == 0 {
		t.Fatalf("%d acknowledged, %d refused: the filesystem never filled", len(acked), len(refused))
	}
	t.Logf("512 KiB filesystem: %d writes acknowledged, %d refused (ErrFull)", len(acked), len(refused))
	check := func(s *Store, when string) {
		t.Helper()
		kvs, err := s.List(ctx, "k/", "", 0)
		if err != nil {
			t.Fatalf("%s: list: %v", when, err)
		}
		n := 0
		for _, kv := range kvs {
			if refused[kv.Key] {
				t.Fatalf("%s: refused write %s is stored", when, kv.Key)
			}
			if acked[kv.Key] {
				n++
			}
		}
		if n != len(acked) || len(kvs) != len(acked) {
			t.Fatalf("%s: %d keys, %d of the %d acknowledged", when, len(kvs), n, len(acked))
		}
	}
	check(s, "full")

	if out, err := exec.Command("mount", "-o", "remount,size=4m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v\n%s", err, out)
	}
	for i := range 50 {
		k := fmt.Sprintf("k/after/%d", i)
		if err := s.Txn(ctx, nil, []store.Op{store.Put(k, val)}); err != nil {
			t.Fatalf("write %d after space returned: %v", i, err)
		}
		acked[k] = true
	}
	check(s, "after space returned")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	check(s2, "reopened")
}
