// Package hosttest holds helpers the hostlib, keywarden-host and end-to-end
// tests share: sparse image files, loop devices that are always detached,
// random machine passphrases, qemu-io read-backs and the device-mapper check
// that decides which tests can run on this host.
package hosttest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Need skips the test when bin is not installed.
func Need(t testing.TB, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("%s not installed", bin)
	}
}

// SparseFile creates an empty file of mib MiB in a per-test directory.
func SparseFile(t testing.TB, mib int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(mib << 20); err != nil {
		t.Fatal(err)
	}
	return path
}

// LoopDevice attaches path to a free loop device and detaches it when the
// test ends; it skips when loop devices cannot be used here.
func LoopDevice(t testing.TB, path string) string {
	t.Helper()
	Need(t, "losetup")
	out, err := exec.Command("losetup", "-f", "--show", path).CombinedOutput()
	if err != nil {
		skipOrFail(t, "loop devices unavailable: %v: %s", err, strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v %s", dev, err, out)
		}
	})
	return dev
}

// HexPass returns a 256-bit random key as its 64-character lowercase hex
// passphrase, what a symmetric secret turns into.
func HexPass(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return []byte(hex.EncodeToString(k))
}

// DeviceMapper reports whether device-mapper works here, and why not.
func DeviceMapper() (bool, string) {
	f, err := os.OpenFile("/dev/mapper/control", os.O_RDWR, 0)
	if err != nil {
		return false, "device-mapper unavailable: " + err.Error()
	}
	f.Close()
	if _, err := exec.LookPath("dmsetup"); err == nil {
		out, err := exec.Command("dmsetup", "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Driver version") {
			return false, "device-mapper unavailable: dmsetup version: " + strings.TrimSpace(string(out))
		}
	}
	return true, ""
}

// RequireDMEnv, set to 1, turns the skips of NeedDeviceMapper and
// LoopDevice into failures: the test VM sets it, where device-mapper and
// loop devices must work and a skip would hide a broken VM.
const RequireDMEnv = "KEYWARDEN_REQUIRE_DM"

// NeedDeviceMapper skips the test, with the reason, where device-mapper
// does not work (fails instead under RequireDMEnv).
func NeedDeviceMapper(t testing.TB) {
	t.Helper()
	if ok, why := DeviceMapper(); !ok {
		skipOrFail(t, "%s", why)
	}
}

func skipOrFail(t testing.TB, format string, a ...any) {
	t.Helper()
	if os.Getenv(RequireDMEnv) == "1" {
		t.Fatalf(format, a...)
	}
	t.Skipf(format, a...)
}
