// Package kmstest builds a kms.Service on real parts for tests: a bolt store
// in a temporary directory and the local root key, as `keywarden serve`
// runs by default. It is the one service fixture of kms, barbican, kmip and
// tests/.
package kmstest

import (
	"path/filepath"
	"testing"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

// Bolt opens a fresh bolt store and creates a local root key in a
// temporary directory of t; both are closed when the test ends.
func Bolt(t testing.TB) (*bolt.Store, *crypto.RootKey) {
	t.Helper()
	dir := t.TempDir()
	// Small WAL segments: a test opens many stores, each preallocates one.
	st, err := bolt.Open(filepath.Join(dir, "keywarden.db"), bolt.Options{SegmentBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root, _, err := crypto.LoadOrCreateRootKey(filepath.Join(dir, "keys", "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(root.Close)
	return st, root
}

// Service builds a Service from cfg, with a fresh Bolt store and root key
// where cfg has no Store or no Master.
func Service(t testing.TB, cfg kms.Config) *kms.Service {
	t.Helper()
	if cfg.Store == nil || cfg.Master == nil {
		st, root := Bolt(t)
		if cfg.Store == nil {
			cfg.Store = st
		}
		if cfg.Master == nil {
			cfg.Master = root
		}
	}
	svc, err := kms.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}
