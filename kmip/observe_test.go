package kmip

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"
)

// Observe sees every batch item: its operation and, on failure, the Result
// Reason; an operation number the server does not know is "unsupported",
// never the client's number.
func TestObserve(t *testing.T) {
	var mu sync.Mutex
	var got [][2]string
	ids, err := NewIdentities(sharedCA(t).Certificate(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{Service: newService(t), Certificate: serverCert(t), Identities: ids,
		Observe: func(op, failure string, d time.Duration) {
			mu.Lock()
			got = append(got, [2]string{op, failure})
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	msg := requestMsg(t, version{1, 4}, []ttlv.Value{v(kmip14.TagBatchErrorContinuationOption, kmip14.BatchErrorContinuationOptionContinue)},
		op{op: kmip14.OperationDiscoverVersions},
		op{op: kmip14.OperationGet, payload: []ttlv.Value{v(kmip14.TagUniqueIdentifier, "no-such-id")}},
		op{op: kmip14.Operation(0x7777)})
	srv.Handle(context.Background(), who("p1"), msg)
	want := [][2]string{{"DiscoverVersions", ""}, {"Get", "ItemNotFound"}, {"unsupported", "OperationNotSupported"}}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("observed %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("item %d observed as %v, want %v", i, got[i], want[i])
		}
	}
}
