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
