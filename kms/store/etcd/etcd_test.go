package etcd

import (
	"fmt"
	"net"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms/store"
	"github.com/keywarden/keywarden/kms/store/storetest"
)

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startEtcd runs Debian's real etcd server on loopback for the test.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatal("etcd is not installed: run `make deps` (Debian package etcd-server)")
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--name", "kw", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "kw="+peer, "--log-level", "error")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return client
}

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
	_, err := Open(Config{Endpoints: []string{fmt.Sprintf("127.0.0.1:%d", freePort(t))}, DialTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("Open succeeded against nothing")
	}
}
