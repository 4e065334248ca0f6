package etcd

import (
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
