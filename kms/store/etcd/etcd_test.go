package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms/store"
	"github.com/keywarden/keywarden/kms/store/storetest"
	"github.com/keywarden/keywarden/tests/etcdtest"
)

// startEtcd runs Debian's real etcd server on loopback for the test.
func startEtcd(t *testing.T) string { return etcdtest.Start(t) }

func TestConformance(t *testing.T) {
	endpoint := startEtcd(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		// Each subtest gets its own namespace on the one cluster: empty, as
		// the suite requires.
		s, err := Open(Config{Endpoints: []string{endpoint}, Prefix: fmt.Sprintf("/t%d/", n.Add(1)), DialTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestUnreachableCluster(t *testing.T) {
	_, err := Open(Config{Endpoints: []string{fmt.Sprintf("127.0.0.1:%d", etcdtest.FreePort(t))}, DialTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("Open succeeded against nothing")
	}
}

// TestClusterDownIsUnavailable: with its only member killed, reads and
// writes fail as store.ErrUnavailable (the service answers 503), within
// the caller's deadline.
func TestClusterDownIsUnavailable(t *testing.T) {
	c := etcdtest.StartCluster(t, 1)
	s, err := Open(Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c.Members[0].Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("get: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if err := s.Txn(ctx2, nil, []store.Op{store.Put("k", []byte("v"))}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("txn: %v", err)
	}
}

// TestQuotaExceededIsFull: a cluster past its backend quota (the NOSPACE
// alarm, "database space exceeded") refuses writes as store.ErrFull — the
// service answers 503, not 500 — while reads go on.
func TestQuotaExceededIsFull(t *testing.T) {
	endpoint := etcdtest.StartWith(t, "--quota-backend-bytes", fmt.Sprint(1<<20))
	s, err := Open(Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Txn(ctx, nil, []store.Op{store.Put("first", []byte("v"))}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 64<<10)
	var full error
	for i := 0; i < 64 && full == nil; i++ {
		full = s.Txn(ctx, nil, []store.Op{store.Put(fmt.Sprintf("fill/%d", i), value)})
	}
	if !errors.Is(full, store.ErrFull) {
		t.Fatalf("writing past a 1 MiB quota: %v, want store.ErrFull", full)
	}
	if _, err := s.Get(ctx, "first"); err != nil {
		t.Fatalf("read after NOSPACE: %v", err)
	}
}
