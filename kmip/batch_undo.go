package kmip

// Batch Error Continuation Option Undo.
//
// Undo asks the server to roll back a batch's earlier items when one
// fails. This server cannot do that for a state change: each change is its
// own kms transaction, committed once its audit record is on disk, with no
// transaction spanning batch items; and several changes have no inverse at
// all (an Active key never returns to Pre-Active, Revoke and Destroy are
// final, destroyed material is gone). A compensating change would be a new,
// separate change others may already have observed — not a rollback.
//
// So Undo is served exactly where rollback is exact: a batch whose items
// change no state. If one fails, the earlier ones are answered Operation
// Undone (their payloads withheld) and the later ones are not run. A batch
// under Undo with an item that would change state (or open or feed a
// stream) is refused before anything runs: Feature Not Supported.

import (
	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// stateless lists the operations that change no object and no session
// state. Anything not listed (including operations added later) is treated
// as a state change.
var stateless = map[uint32]bool{
	uint32(kmip14.OperationDiscoverVersions): true, uint32(kmip14.OperationQuery): true,
	uint32(kmip14.OperationGet): true, uint32(kmip14.OperationGetAttributes): true,
	uint32(kmip14.OperationGetAttributeList): true, uint32(kmip14.OperationLocate): true,
	uint32(kmip14.OperationCheck): true, uint32(kmip14.OperationEncrypt): true,
	uint32(kmip14.OperationDecrypt): true, uint32(kmip14.OperationSign): true,
	uint32(kmip14.OperationSignatureVerify): true, uint32(kmip14.OperationMAC): true,
	uint32(kmip14.OperationMACVerify): true, uint32(kmip14.OperationHash): true,
	uint32(kmip14.OperationRNGRetrieve): true, uint32(kmip14.OperationRNGSeed): true,
}

// undoable refuses an Undo batch that holds an item this server could not
// roll back. Malformed items change nothing: they only fail.
func undoable(items []batchItem) *opError {
	for i, bi := range items {
		if bi.err != nil {
			continue
		}
		if !stateless[bi.op] {
			return notSupported("Undo: batch item %d (%s) changes state, which this server cannot roll back; "+
				"send it with Stop or Continue", i+1, kmip20.Operation(bi.op))
		}
		for _, t := range []ttlv.Tag{kmip14.TagInitIndicator, kmip14.TagFinalIndicator, kmip14.TagCorrelationValue} {
			if _, ok := bi.payload.find(t); ok {
				return notSupported("Undo: batch item %d is part of a stream, whose state cannot be rolled back", i+1)
			}
		}
	}
	return nil
}

// answered is a batch item already written to the response.
type answered struct {
	bi   batchItem
	mark int // where its Batch Item starts in the response
}

// undo rewrites the answers of the items before the failed one (the last
// answered) as Operation Undone, zeroing what they wrote: a Get's key
// material must not leave in an undone item.
func (r *response) undo(done []answered) {
	if len(done) < 2 {
		return
	}
	w := r.w
	failed := append([]byte(nil), w.b[done[len(done)-1].mark:]...)
	clear(w.b[done[0].mark:])
	w.b = w.b[:done[0].mark]
	for _, a := range done[:len(done)-1] {
		r.itemHasOp, r.itemOp, r.itemID, r.itemHasID = a.bi.hasOp, a.bi.op, a.bi.id, a.bi.hasID
		r.itemHead(uint32(kmip14.ResultStatusOperationUndone))
		w.end()
	}
	w.b = append(w.b, failed...)
	clear(failed)
}
