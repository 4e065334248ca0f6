package kmip

import (
	"fmt"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"
)

func continuation(o kmip14.BatchErrorContinuationOption) []ttlv.Value {
	return []ttlv.Value{v(kmip14.TagBatchErrorContinuationOption, o)}
}

// TestBatchUndo: Undo rolls back exactly where it can (a batch of items
// that change no state) and refuses, before running anything, a batch it
// could not roll back.
func TestBatchUndo(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 0}, {1, 4}, {2, 1}} {
		t.Run(fmt.Sprintf("%d.%d", ver.major, ver.minor), func(t *testing.T) {
			c := e.dial(fmt.Sprintf("undo%d%d", ver.major, ver.minor))
			c.ver = ver
			undo := continuation(kmip14.BatchErrorContinuationOptionUndo)
			id := uidOf(c.do(createAES(ver, 256, "Name", nameVal("kept"))).ok(0))
			count := func() int {
				r := c.do(op{op: kmip14.OperationLocate, payload: []ttlv.Value{attr1OrAttrs(ver, "Object Type", kmip14.ObjectTypeSymmetricKey)}}).ok(0)
				return len(all(r, tagUniqueIdentifier))
			}

			// A state change under Undo: refused, nothing runs.
			r := decodeResp(t, c.roundTrip(requestMsg(t, ver, undo,
				byID(kmip14.OperationGet, id), createAES(ver, 128), byID(kmip14.OperationGet, "missing"))))
			if len(r.items) != 1 {
				t.Fatalf("refused Undo batch answered %d items", len(r.items))
			}
			r.failed(0, uint32(kmip14.ResultReasonFeatureNotSupported))
			if n := count(); n != 1 {
				t.Fatalf("the refused batch created objects: %d keys", n)
			}

			// Reads under Undo, the third fails: the first two are undone,
			// the fourth is not answered.
			g1, g2 := byID(kmip14.OperationGet, id), byID(kmip14.OperationGetAttributes, id)
			g1.id, g2.id = []byte{1}, []byte{2}
			r = decodeResp(t, c.roundTrip(requestMsg(t, ver, undo, g1, g2,
				byID(kmip14.OperationGet, "missing"), byID(kmip14.OperationGet, id))))
			if len(r.items) != 3 {
				t.Fatalf("Undo answered %d items, want 3", len(r.items))
			}
			for i := range 2 {
				it := r.item(i)
				if s := get(it, kmip14.TagResultStatus); s != ttlv.EnumValue(kmip14.ResultStatusOperationUndone) {
					t.Fatalf("item %d: status %v, want Operation Undone", i, s)
				}
				if get(it, tagResponsePayload) != nil {
					t.Fatalf("undone item %d kept its payload", i)
				}
				if b, _ := get(it, kmip14.TagUniqueBatchItemID).([]byte); len(b) != 1 || b[0] != byte(i+1) {
					t.Fatalf("item %d batch id %v", i, b)
				}
			}
			r.failed(2, uint32(kmip14.ResultReasonItemNotFound))

			// Under Undo with no failure, every item is answered.
			r = decodeResp(t, c.roundTrip(requestMsg(t, ver, undo, byID(kmip14.OperationGet, id),
				byID(kmip14.OperationGetAttributes, id))))
			r.ok(0)
			r.ok(1)

			// Stop: the items after the failure are not run.
			r = decodeResp(t, c.roundTrip(requestMsg(t, ver, continuation(kmip14.BatchErrorContinuationOptionStop),
				createAES(ver, 128), byID(kmip14.OperationGet, "missing"), createAES(ver, 128))))
			if len(r.items) != 2 {
				t.Fatalf("Stop answered %d items", len(r.items))
			}
			r.ok(0)
			r.failed(1, uint32(kmip14.ResultReasonItemNotFound))
			if n := count(); n != 2 {
				t.Fatalf("after Stop: %d keys, want 2", n)
			}
			// Continue: all run.
			r = decodeResp(t, c.roundTrip(requestMsg(t, ver, continuation(kmip14.BatchErrorContinuationOptionContinue),
				byID(kmip14.OperationGet, "missing"), createAES(ver, 128))))
			r.failed(0, uint32(kmip14.ResultReasonItemNotFound))
			r.ok(1)
			if n := count(); n != 3 {
				t.Fatalf("after Continue: %d keys, want 3", n)
			}
		})
	}
}
