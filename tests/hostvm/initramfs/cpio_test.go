package initramfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// busybox's cpio, the same newc reader family as the kernel's, must list
// and unpack what Archive writes: parents created, duplicates once,
// modes, symlinks and file contents kept.
func TestArchiveUnpacks(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	if _, err := exec.LookPath("cryptsetup"); err != nil {
		t.Skip("cryptsetup not installed")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "a.cpio")
	a, err := Create(file)
	if err != nil {
		t.Fatal(err)
	}
	a.Bytes("/bin/tool", 0o755, []byte("#!/bin/sh\necho hi\n"))
	a.Bytes("/bin/tool", 0o644, []byte("ignored: added twice"))
	a.Symlink("/bin/sh", "busybox")
	a.Bytes("/etc/odd", 0o600, []byte("abc")) // a length needing padding
	a.Dir("/empty")
	a.Binary("cryptsetup") // with its libraries
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "root")
	os.Mkdir(out, 0o755)
	cmd := exec.Command(bb, "cpio", "-i", "-d", "-F", file)
	cmd.Dir = out
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio: %v\n%s", err, msg)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "bin/tool")); string(b) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("bin/tool = %q", b)
	}
	if st, err := os.Stat(filepath.Join(out, "bin/tool")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("bin/tool mode: %v %v", st, err)
	}
	if l, _ := os.Readlink(filepath.Join(out, "bin/sh")); l != "busybox" {
		t.Fatalf("bin/sh → %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "etc/odd")); string(b) != "abc" {
		t.Fatalf("etc/odd = %q", b)
	}
	if st, err := os.Stat(filepath.Join(out, "empty")); err != nil || !st.IsDir() {
		t.Fatalf("empty: %v", err)
	}
	libs, _ := filepath.Glob(filepath.Join(out, "lib*", "*", "libcryptsetup.so*"))
	loader, _ := filepath.Glob(filepath.Join(out, "lib64", "ld-linux-*"))
	if len(libs) == 0 || len(loader) == 0 {
		list, _ := exec.Command(bb, "cpio", "-t", "-F", file).Output()
		t.Fatalf("cryptsetup's libraries or the loader missing:\n%s", strings.TrimSpace(string(list)))
	}
}
