package luks

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// These tests check the Go verifier against headers written by the real
// cryptsetup and qemu-img: any disagreement with them is a bug here.

func need(t testing.TB, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("%s not installed", bin)
	}
}

func randomPass(t testing.TB) []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return []byte(hex.EncodeToString(k))
}

// cryptsetupFormat formats a sparse file of mib MiB, passphrase on stdin.
func cryptsetupFormat(t testing.TB, mib int64, pass []byte, args ...string) string {
	t.Helper()
	need(t, "cryptsetup")
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.Truncate(path, 0); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(mib << 20)
	f.Close()
	all := append([]string{"luksFormat", "--batch-mode", "--key-file=-"}, args...)
	runStdin(t, pass, "cryptsetup", append(all, path)...)
	return path
}

func runStdin(t testing.TB, stdin []byte, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
}

func fast(typ string) []string {
	return []string{"--type", typ, "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}
}

func expectVerify(t *testing.T, path string, pass []byte, wantSlot int) *Header {
	t.Helper()
	h, slot, err := VerifyFile(path, pass)
	if err != nil {
		t.Fatalf("right passphrase refused: %v", err)
	}
	if slot != wantSlot {
		t.Fatalf("slot = %d, want %d", slot, wantSlot)
	}
	return h
}

func expectRefused(t *testing.T, path string, pass []byte) {
	t.Helper()
	_, _, err := VerifyFile(path, pass)
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: err = %v, want ErrWrongPassphrase", err)
	}
}

func TestLUKS1FromCryptsetup(t *testing.T) {
	cases := []struct {
		name string
		args []string
		key  int
	}{
		{"xts-plain64-sha256-512", []string{"--cipher", "aes-xts-plain64", "--hash", "sha256", "--key-size", "512"}, 64},
		{"xts-plain64-sha512-256", []string{"--cipher", "aes-xts-plain64", "--hash", "sha512", "--key-size", "256"}, 32},
		{"cbc-essiv-sha1-256", []string{"--cipher", "aes-cbc-essiv:sha256", "--hash", "sha1", "--key-size", "256"}, 32},
		{"cbc-plain64-sha256-128", []string{"--cipher", "aes-cbc-plain64", "--hash", "sha256", "--key-size", "128"}, 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pass := randomPass(t)
			path := cryptsetupFormat(t, 4, pass, append(fast("luks1"), c.args...)...)
			h := expectVerify(t, path, pass, 0)
			if h.Version != 1 || h.KeyBytes != c.key || h.Container != "raw" {
				t.Fatalf("header = v%d key %d %s", h.Version, h.KeyBytes, h.Container)
			}
			expectRefused(t, path, append(pass, '\n'))
			expectRefused(t, path, pass[:len(pass)-1])
		})
	}
}

func TestLUKS2PBKDF2FromCryptsetup(t *testing.T) {
	for _, hash := range []string{"sha256", "sha512"} {
		t.Run(hash, func(t *testing.T) {
			pass := randomPass(t)
			path := cryptsetupFormat(t, 20, pass, append(fast("luks2"), "--hash", hash, "--sector-size", "4096")...)
			h := expectVerify(t, path, pass, 0)
			if h.Version != 2 || h.Cipher != "aes-xts-plain64" || h.PayloadOffset != 16<<20 {
				t.Fatalf("header = %+v", h)
			}
			expectRefused(t, path, []byte("not-it"))
		})
	}
}

func TestSecondKeyslotAndKilledSlot(t *testing.T) {
	pass, second := randomPass(t), randomPass(t)
	path := cryptsetupFormat(t, 20, pass, fast("luks2")...)
	// New key through an inherited descriptor path, old key on stdin.
	r, w, _ := os.Pipe()
	w.Write(second)
	w.Close()
	cmd := exec.Command("cryptsetup", "luksAddKey", "--batch-mode", "--key-file=-", "--key-slot", "3",
		"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", path, "/dev/fd/3")
	cmd.Stdin, cmd.ExtraFiles = bytes.NewReader(pass), []*os.File{r}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("luksAddKey: %v %s", err, out)
	}
	r.Close()
	expectVerify(t, path, second, 3)
	expectVerify(t, path, pass, 0)
	runStdin(t, nil, "cryptsetup", "luksKillSlot", "--batch-mode", path, "0")
	expectRefused(t, path, pass)
	expectVerify(t, path, second, 3)
}

func TestLUKS2Argon2(t *testing.T) {
	for _, kdf := range []string{"argon2id", "argon2i"} {
		t.Run(kdf, func(t *testing.T) {
			if kdf == "argon2i" && testing.Short() {
				t.Skip("-short: cryptsetup's argon2 benchmark costs ~2.5 s per format")
			}
			pass := randomPass(t)
			// Benchmarked with a short target rather than a forced count:
			// cryptsetup reads a forced "iteration" count as argon2 time cost.
			path := cryptsetupFormat(t, 20, pass, "--type", "luks2", "--pbkdf", kdf,
				"--iter-time", "50", "--pbkdf-memory", "32768", "--pbkdf-parallel", "2")
			h := expectVerify(t, path, pass, 0)
			if k := h.Keyslots[0].KDF; k.Type != kdf || k.MemoryKiB > 32768 || k.Threads < 1 {
				t.Fatalf("kdf = %+v", k)
			}
			expectRefused(t, path, []byte("nope"))
		})
	}
}

func TestNotLUKS(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero")
	os.WriteFile(zero, make([]byte, 1<<20), 0o600)
	tiny := filepath.Join(dir, "tiny")
	os.WriteFile(tiny, []byte("LUKS"), 0o600)
	for _, p := range []string{zero, tiny} {
		if _, _, err := VerifyFile(p, []byte("x")); !errors.Is(err, ErrNotLUKS) {
			t.Errorf("%s: err = %v, want ErrNotLUKS", filepath.Base(p), err)
		}
	}
}

func TestLUKS2SecondaryHeaderRecovers(t *testing.T) {
	pass := randomPass(t)
	path := cryptsetupFormat(t, 20, pass, fast("luks2")...)
	damage(t, path, 4096+10) // inside the primary JSON area
	expectVerify(t, path, pass, 0)
	damage(t, path, 0x4000+4096+10) // and now the secondary too
	if _, _, err := VerifyFile(path, pass); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("both copies damaged: err = %v, want ErrCorrupt", err)
	}
}

func TestHostileLUKS1Geometry(t *testing.T) {
	pass := randomPass(t)
	path := cryptsetupFormat(t, 4, pass, fast("luks1")...)
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	// Slot 0 stripes field := 0xffffffff: must be refused, not allocated.
	f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, 208+44)
	f.Close()
	if _, _, err := VerifyFile(path, pass); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestDamagedKeyMaterialRefuses(t *testing.T) {
	pass := randomPass(t)
	path := cryptsetupFormat(t, 4, pass, fast("luks1")...)
	damage(t, path, 8*512+100) // slot 0 key material starts at sector 8
	expectRefused(t, path, pass)
}

func damage(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0x5a
	f.WriteAt(b, off)
}
