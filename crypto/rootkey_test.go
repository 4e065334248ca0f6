package crypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestRootKeyCreateAndLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "keywarden")
	path := filepath.Join(dir, "root.key")
	k, created, err := LoadOrCreateRootKey(path)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	defer k.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != RootKeySize {
		t.Fatalf("file mode %v size %d", fi.Mode(), fi.Size())
	}
	di, err := os.Stat(dir)
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v %v", di.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".rootkey-*")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}

	raw, _ := os.ReadFile(path)
	if !strings.HasPrefix(k.ID(), "local:") || strings.Contains(k.ID(), hex.EncodeToString(raw)[:8]) {
		t.Fatalf("ID %q", k.ID())
	}

	k2, created, err := LoadOrCreateRootKey(path)
	if err != nil || created {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	defer k2.Close()
	if k2.ID() != k.ID() {
		t.Fatal("ID not stable across loads")
	}
	w, err := k.Wrap(ctx, []byte("kek"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.Unwrap(ctx, w, []byte("aad")); err != nil || string(got) != "kek" {
		t.Fatalf("unwrap: %q %v", got, err)
	}
	if _, err := k2.Unwrap(ctx, w, []byte("other")); err == nil {
		t.Fatal("unwrap ignored the AAD")
	}
	if len(w) != 12+3+16 {
		t.Fatalf("wrapped length %d, want nonce+ct+tag", len(w))
	}
}

func TestRootKeyRefusesLoosePermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	k, _, err := LoadOrCreateRootKey(path)
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		for name, load := range map[string]func() error{
			"LoadOrCreate": func() error { _, _, err := LoadOrCreateRootKey(path); return err },
			"Load":         func() error { _, err := LoadRootKey(path); return err },
		} {
			err := load()
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprintf("%#o", mode)) {
				t.Errorf("%s at %#o: %v", name, mode, err)
			}
		}
	}
	os.Chmod(path, 0o400) // read-only for the owner is fine
	if k, err := LoadRootKey(path); err != nil {
		t.Fatalf("0400: %v", err)
	} else {
		k.Close()
	}
}

func TestRootKeyRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"short":    bytes.Repeat([]byte{1}, 31),
		"long":     bytes.Repeat([]byte{1}, 33),
		"hex text": []byte(strings.Repeat("ab", 32)),
		"empty":    {},
		"zero":     make([]byte, 32),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, created, err := LoadOrCreateRootKey(path)
		if err == nil || created || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: created=%v err=%v", name, created, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
			t.Errorf("%s: file was changed", name)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRootKey(filepath.Join(dir, "d")); err == nil {
		t.Error("loaded a directory")
	}
}

func TestLoadRootKeyNeverCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "root.key")
	if _, err := LoadRootKey(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err %v", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("LoadRootKey created something")
	}
}

func TestRootKeyConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	const n = 16
	ids := make([]string, n)
	made := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, created, err := LoadOrCreateRootKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], made[i] = k.ID(), created
			k.Close()
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if ids[i] != ids[0] {
			t.Fatalf("racing creators got different keys: %s vs %s", ids[i], ids[0])
		}
		if made[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Fatalf("%d callers report creating the key", creators)
	}
}

func TestRootKeyClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	k, _, err := LoadOrCreateRootKey(path)
	if err != nil {
		t.Fatal(err)
	}
	key := k.key
	k.Close()
	if !allZero(key) {
		t.Fatal("Close left key bytes behind")
	}
	if _, err := k.Wrap(ctx, []byte("x"), nil); err == nil {
		t.Fatal("Wrap after Close")
	}
	k.Close() // idempotent
}
