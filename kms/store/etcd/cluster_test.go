package etcd

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// TestTwoNodesShareOneCluster runs two kms.Service "nodes", each with its
// own etcd client, on one real etcd: what one writes the other reads, and
// consumer changes racing from both nodes are neither lost nor allowed to
// leave a consumer on a deleted secret.
func TestTwoNodesShareOneCluster(t *testing.T) {
	endpoint := startEtcd(t)
	root, _, err := crypto.LoadOrCreateRootKey(filepath.Join(t.TempDir(), "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	node := func() *kms.Service {
		st, err := Open(Config{Endpoints: []string{endpoint}, Prefix: "/kw/", DialTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svc, err := kms.New(kms.Config{Store: st, Master: root})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a, b := node(), node()
	ctx := context.Background()
	who := kms.Identity{Project: "p1", User: "u1", Roles: []string{kms.RoleAdmin}}

	sec, err := a.CreateSecret(ctx, who, kms.CreateRequest{Type: kms.Passphrase, Payload: []byte("shared"), ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	_, pt, err := b.GetPayload(ctx, who, sec.ID)
	if err != nil || !bytes.Equal(pt, []byte("shared")) {
		t.Fatalf("node b reads %q, %v", pt, err)
	}

	// 20 consumers added from both nodes at once: all must land.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := a
			if i%2 == 1 {
				n = b
			}
			c := kms.Consumer{Service: "nova", ResourceType: "disk", ResourceID: fmt.Sprintf("disk-%d", i)}
			if _, err := n.AddConsumer(ctx, who, sec.ID, c); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := b.GetSecret(ctx, who, sec.ID, kms.View{})
	if err != nil || len(got.Consumers) != 20 {
		t.Fatalf("consumers after concurrent adds from two nodes: %d (%v)", len(got.Consumers), err)
	}
	// Node a's cached view must not let a delete through a consumer node b sees.
	if err := a.DeleteSecret(ctx, who, sec.ID, false); kms.KindOf(err) != kms.KindConflict {
		t.Fatalf("delete of a secret in use: %v", err)
	}
	// A delete on b is seen by a at once.
	if err := b.DeleteSecret(ctx, who, sec.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSecret(ctx, who, sec.ID, kms.View{}); kms.KindOf(err) != kms.KindNotFound {
		t.Fatalf("node a still sees a secret node b deleted: %v", err)
	}
}
