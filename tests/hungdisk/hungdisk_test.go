package hungdisk_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keywarden/keywarden/tests/hungdisk"
)

// TestHang: a write under the mount blocks in the kernel while the disk
// hangs and completes, with its bytes, once it answers; reads of other
// files go on (the kernel keeps the written page locked meanwhile).
func TestHang(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE directly needs root")
	}
	d := hungdisk.Mount(t)
	path := filepath.Join(d.Dir, "f")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(d.Dir, "other")
	if err := os.WriteFile(other, []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Hang()
	done := make(chan error, 1)
	go func() {
		_, err := f.WriteAt([]byte("+after"), 6)
		if err == nil {
			err = f.Sync()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a write on the hung disk returned: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if d.Blocked() != 1 {
		t.Fatalf("%d operations blocked, want 1", d.Blocked())
	}
	if b, err := os.ReadFile(other); err != nil || string(b) != "other" {
		t.Fatalf("a read while hung: %q %v", b, err)
	}
	d.Answer()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write did not complete after Answer")
	}
	if b, _ := os.ReadFile(path); string(b) != "before+after" {
		t.Fatalf("content %q", b)
	}
}
