package kmip

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// opCtx is what a batch item's handler works with.
type opCtx struct {
	ctx context.Context
	svc *kms.Service
	who kms.Identity
	ver version
	now time.Time
	w   *writer
	// placeholder is the ID Placeholder: the Unique Identifier the last
	// Create, Register or Locate of this batch produced.
	placeholder string
	suiteB      SuiteB // the listener's Suite B mode, for Query Profiles
	// serveNext: the next item is a Get that serves what this Create or
	// Register makes (servedGet); served: the id kms then made not Fresh.
	serveNext bool
	served    string
}

type opFunc func(c *opCtx, p item) *opError

type operation struct {
	fn    opFunc
	since version // first version that defines the operation
}

// operations is the table of operations this server serves. Anything else
// answers Operation Not Supported.
var operations map[uint32]operation

func init() {
	v10, v12, v20 := version{1, 0}, version{1, 2}, version{2, 0}
	operations = map[uint32]operation{
		uint32(kmip14.OperationDiscoverVersions): {opDiscoverVersions, v10},
		uint32(kmip14.OperationQuery):            {opQuery, v10},
		uint32(kmip14.OperationCreate):           {opCreate, v10},
		uint32(kmip14.OperationRegister):         {opRegister, v10},
		uint32(kmip14.OperationGet):              {opGet, v10},
		uint32(kmip14.OperationGetAttributes):    {opGetAttributes, v10},
		uint32(kmip14.OperationGetAttributeList): {opGetAttributeList, v10},
		uint32(kmip14.OperationAddAttribute):     {opAddAttribute, v10},
		uint32(kmip14.OperationModifyAttribute):  {opModifyAttribute, v10},
		uint32(kmip14.OperationDeleteAttribute):  {opDeleteAttribute, v10},
		uint32(kmip20.OperationSetAttribute):     {opSetAttribute, v20},
		uint32(kmip14.OperationLocate):           {opLocate, v10},
		uint32(kmip14.OperationCheck):            {opCheck, v10},
		uint32(kmip14.OperationActivate):         {opActivate, v10},
		uint32(kmip14.OperationRevoke):           {opRevoke, v10},
		uint32(kmip14.OperationDestroy):          {opDestroy, v10},
		uint32(kmip14.OperationCreateKeyPair):    {opCreateKeyPair, v10},
		uint32(kmip14.OperationReKey):            {opRekey, v10},
		uint32(kmip14.OperationReKeyKeyPair):     {opRekeyKeyPair, version{1, 1}},
		uint32(kmip14.OperationEncrypt):          {opEncrypt, v12},
		uint32(kmip14.OperationDecrypt):          {opDecrypt, v12},
		uint32(kmip14.OperationSign):             {opSign, v12},
		uint32(kmip14.OperationSignatureVerify):  {opSignVerify, v12},
		uint32(kmip14.OperationMAC):              {opMAC, v12},
		uint32(kmip14.OperationMACVerify):        {opMACVerify, v12},
		uint32(kmip14.OperationHash):             {opHash, v12},
		uint32(kmip14.OperationRNGRetrieve):      {opRNGRetrieve, v12},
		uint32(kmip14.OperationRNGSeed):          {opRNGSeed, v12},
	}
}

// supportedOps lists the operations served at version v, for Query.
func supportedOps(v version) []uint32 {
	var out []uint32
	for _, op := range []kmip20.Operation{
		kmip20.OperationCreate, kmip20.OperationRegister, kmip20.OperationLocate,
		kmip20.OperationCheck, kmip20.OperationGet, kmip20.OperationGetAttributes,
		kmip20.OperationGetAttributeList, kmip20.OperationAddAttribute,
		kmip20.OperationModifyAttribute, kmip20.OperationDeleteAttribute,
		kmip20.OperationSetAttribute, kmip20.OperationActivate, kmip20.OperationRevoke,
		kmip20.OperationDestroy, kmip20.OperationQuery, kmip20.OperationDiscoverVersions,
		kmip20.OperationCreateKeyPair, kmip20.OperationEncrypt, kmip20.OperationDecrypt,
		kmip20.OperationSign, kmip20.OperationSignatureVerify, kmip20.OperationMAC,
		kmip20.OperationMACVerify, kmip20.OperationHash, kmip20.OperationRNGRetrieve,
		kmip20.OperationRNGSeed, kmip20.OperationReKey, kmip20.OperationReKeyKeyPair,
	} {
		if o, ok := operations[uint32(op)]; ok && v.atLeast(o.since.major, o.since.minor) {
			out = append(out, uint32(op))
		}
	}
	return out
}

// process answers one request message, appending the response to w. It
// always produces a response, whatever msg holds.
func (s *Server) process(ctx context.Context, who kms.Identity, msg []byte, w *writer) {
	if s.codecHook != nil {
		s.codecHook(msg)
	}
	now := s.now().UTC()
	h, items, perr := parseRequest(msg, s.maxItems)
	if perr == nil && !h.ver.served() {
		perr = errf(kmip20.ResultReasonUnsupportedProtocolVersion,
			"KMIP %d.%d is not served; this server speaks KMIP 1.0-1.4, 2.0 and 2.1", h.ver.major, h.ver.minor)
	}
	if perr == nil && h.onError == batchUndo {
		perr = undoable(items)
	}
	var r response
	if perr != nil {
		ver := version{1, 0}
		if h.hasVersion {
			ver = h.ver.fallback()
		}
		r.start(w, ver, now, nil, 0)
		r.failItem(false, 0, nil, false, perr)
		r.finish()
		return
	}
	r.start(w, h.ver, now, h.clientCorr, h.maxResponse)
	c := opCtx{ctx: ctx, svc: s.svc, who: who, ver: h.ver, now: now, w: w, suiteB: s.suiteBOf(ctx)}
	var done []answered // kept for Undo only
	pending := ""       // created served; this item is its Get (served.go)
	for i, bi := range items {
		start := time.Now()
		mark := len(w.b)
		c.serveNext = i+1 < len(items) && servedGet(h.ver, bi, items[i+1])
		perr := s.item(&c, &r, bi)
		c.serveNext = false
		if s.observe != nil {
			s.observeItem(bi, perr, time.Since(start))
		}
		if pending != "" && perr != nil {
			s.unserve(&c, pending) // not served after all
		}
		pending, c.served = c.served, ""
		if h.onError == batchUndo {
			done = append(done, answered{bi, mark})
		}
		// Stop and Undo: the items after a failure are neither run nor
		// answered; Undo also marks the earlier ones Operation Undone.
		if perr != nil && h.onError != batchContinue {
			r.undo(done)
			break
		}
	}
	if pending != "" {
		s.unserve(&c, pending) // its Get was never run
	}
	r.finish()
}

// item answers one batch item.
func (s *Server) item(c *opCtx, r *response, bi batchItem) *opError {
	if bi.err != nil {
		r.failItem(bi.hasOp, bi.op, bi.id, bi.hasID, bi.err)
		return bi.err
	}
	op, ok := operations[bi.op]
	if !ok || !c.ver.atLeast(op.since.major, op.since.minor) {
		perr := errf(kmip20.ResultReasonOperationNotSupported, "operation %s is not supported", kmip20.Operation(bi.op))
		r.failItem(true, bi.op, bi.id, bi.hasID, perr)
		return perr
	}
	r.beginItem(true, bi.op, bi.id, bi.hasID)
	c.w.begin(tagResponsePayload)
	if perr := s.run(c, op.fn, bi.payload); perr != nil {
		r.fail(perr)
		return perr
	}
	c.w.end()
	return r.endItem()
}

func (s *Server) observeItem(bi batchItem, perr *opError, d time.Duration) {
	op, failure := "", ""
	if _, known := operations[bi.op]; known && bi.hasOp {
		op = kmip20.Operation(bi.op).String()
	} else if bi.hasOp {
		op = "unsupported" // a client's number must not become a label
	}
	if perr != nil {
		failure = perr.reason.String()
	}
	s.observe(op, failure, d)
}

// run calls a handler, turning a panic (a bug) into General Failure so one
// bad request can never take the server down.
func (s *Server) run(c *opCtx, fn opFunc, p item) (perr *opError) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("kmip: handler panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			perr = errf(kmip20.ResultReasonGeneralFailure, "internal error")
		}
	}()
	return fn(c, p)
}

// uid returns the Unique Identifier a request names, or the ID Placeholder
// when it names none (or, in 2.x, names the placeholder by enumeration).
func (c *opCtx) uid(p item) (string, *opError) {
	m, ok := p.find(tagUniqueIdentifier)
	if !ok {
		if c.placeholder == "" {
			return "", missingData("the request has no Unique Identifier and the batch no ID Placeholder")
		}
		return c.placeholder, nil
	}
	switch {
	case m.typ == ttlv.TypeTextString:
		if len(m.val) == 0 {
			return "", invalidField("an empty Unique Identifier")
		}
		return string(m.val), nil
	case m.typ == ttlv.TypeEnumeration && c.ver.v2():
		v, _ := m.enum()
		switch kmip20.UniqueIdentifier(v) {
		case kmip20.UniqueIdentifierIDPlaceholder, kmip20.UniqueIdentifierCreate,
			kmip20.UniqueIdentifierRegister, kmip20.UniqueIdentifierLocate:
			if c.placeholder == "" {
				return "", missingData("the batch has no ID Placeholder yet")
			}
			return c.placeholder, nil
		}
		return "", notSupported("Unique Identifier %s", kmip20.UniqueIdentifier(v))
	case m.typ == ttlv.TypeInteger && c.ver.v2():
		return "", notSupported("Unique Identifier given by index")
	}
	return "", m.wrongType(ttlv.TypeTextString)
}

// writeUID writes the Unique Identifier member most responses carry.
func (c *opCtx) writeUID(id string) { c.w.text(tagUniqueIdentifier, id) }
