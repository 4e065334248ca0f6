package kmip

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// version is a KMIP protocol version.
type version struct{ major, minor int32 }

func (v version) atLeast(major, minor int32) bool {
	return v.major > major || (v.major == major && v.minor >= minor)
}

func (v version) v2() bool { return v.major >= 2 }

// served lists the versions this server speaks, most preferred first (the
// order Discover Versions answers in).
var served = []version{{2, 1}, {2, 0}, {1, 4}, {1, 3}, {1, 2}, {1, 1}, {1, 0}}

func (v version) served() bool {
	for _, s := range served {
		if s == v {
			return true
		}
	}
	return false
}

// fallback is the version an error about an unserved version is written
// in: the highest served one not above what the client asked for, so the
// client can still decode it.
func (v version) fallback() version {
	for _, s := range served {
		if !s.atLeast(v.major, v.minor) || s == v {
			return s
		}
	}
	return version{1, 0}
}

// Batch Error Continuation Option values.
const (
	batchContinue = uint32(kmip14.BatchErrorContinuationOptionContinue)
	batchStop     = uint32(kmip14.BatchErrorContinuationOptionStop)
	batchUndo     = uint32(kmip14.BatchErrorContinuationOptionUndo)
)

// header is the part of the Request Header the server acts on.
type header struct {
	ver         version
	hasVersion  bool
	maxResponse int32
	clientCorr  []byte // Client Correlation Value (1.4+), echoed
	onError     uint32 // Batch Error Continuation Option
	batchCount  int32
}

// batchItem is one request batch item, its payload not yet interpreted.
type batchItem struct {
	op      uint32
	hasOp   bool
	id      []byte // Unique Batch Item ID, echoed
	hasID   bool
	payload item
	hasPay  bool
	err     *opError // the item itself is malformed
}

// parseRequest decodes a Request Message. A message-level error (nil items)
// means the whole request is answered with one failed batch item; h.ver is
// filled in whenever the Protocol Version could be read. A request of more
// than maxItems batch items (0: no cap) is refused before any is parsed.
func parseRequest(msg []byte, maxItems int) (h header, items []batchItem, perr *opError) {
	h.onError = batchStop
	if err := check(msg, 0); err != nil {
		salvageVersion(msg, &h)
		return h, nil, invalidMessage("malformed TTLV: %v", err)
	}
	top, rest, _ := split(msg)
	if len(rest) != 0 {
		return h, nil, invalidMessage("trailing bytes after the Request Message")
	}
	if top.tag != tagRequestMessage || top.typ != ttlv.TypeStructure {
		return h, nil, invalidMessage("expected a Request Message, got %s", tagName(top.tag))
	}
	f := top.fields()
	hdr, ok := f.next()
	if !ok || hdr.tag != tagRequestHeader {
		return h, nil, invalidMessage("the Request Message must start with a Request Header")
	}
	if perr := parseHeader(hdr, &h); perr != nil {
		return h, nil, perr
	}
	if t, bad := unknownTag(hdr.val); bad {
		return h, nil, errf(kmip20.ResultReasonUnknownTag, "unknown tag %s in the Request Header", t)
	}
	tooMany := func(n string) *opError {
		return invalidMessage("the request has %s batch items; this server answers at most %d per message "+
			"(send the rest in further requests)", n, maxItems)
	}
	if maxItems > 0 && int64(h.batchCount) > int64(maxItems) {
		return h, nil, tooMany(strconv.Itoa(int(h.batchCount)))
	}
	for it, ok := f.next(); ok; it, ok = f.next() {
		if it.tag != tagBatchItem {
			return h, nil, invalidMessage("unexpected %s in the Request Message", tagName(it.tag))
		}
		if maxItems > 0 && len(items) == maxItems {
			return h, nil, tooMany("more than " + strconv.Itoa(maxItems))
		}
		items = append(items, parseBatchItem(it))
	}
	if len(items) == 0 {
		return h, nil, invalidMessage("the request has no batch item")
	}
	if int(h.batchCount) != len(items) {
		return h, nil, invalidMessage("Batch Count says %d, the message has %d batch items", h.batchCount, len(items))
	}
	return h, items, nil
}

func parseHeader(hdr item, h *header) *opError {
	if perr := hdr.structure(); perr != nil {
		return perr
	}
	var sawCount bool
	f := hdr.fields()
	for it, ok := f.next(); ok; it, ok = f.next() {
		var perr *opError
		switch it.tag {
		case kmip14.TagProtocolVersion:
			perr = parseVersion(it, h)
		case kmip14.TagMaximumResponseSize:
			h.maxResponse, perr = it.integer()
		case kmip14.TagClientCorrelationValue:
			var s string
			s, perr = it.text()
			h.clientCorr = []byte(s)
		case kmip14.TagBatchErrorContinuationOption:
			h.onError, perr = it.enum()
			if perr == nil && (h.onError < batchContinue || h.onError > batchUndo) {
				perr = invalidField("unknown Batch Error Continuation Option %d", h.onError)
			}
		case kmip14.TagBatchCount:
			h.batchCount, perr = it.integer()
			sawCount = true
		case kmip14.TagAsynchronousIndicator:
			// A capability of the client: this server always answers
			// synchronously, which every client must accept.
			_, perr = it.boolean()
		case kmip14.TagTimeStamp:
			_, perr = it.datetime()
		}
		// Other header fields (Authentication, Batch Order Option,
		// attestation, Server Correlation Value) do not change how this
		// server answers: identity comes from the client certificate and
		// batch items always run in order.
		if perr != nil {
			if perr.reason == kmip20.ResultReasonInvalidDataType {
				perr.reason = kmip20.ResultReasonInvalidMessage
			}
			return perr
		}
	}
	if !h.hasVersion {
		return invalidMessage("the Request Header has no Protocol Version")
	}
	if !sawCount {
		return invalidMessage("the Request Header has no Batch Count")
	}
	return nil
}

func parseVersion(it item, h *header) *opError {
	if perr := it.structure(); perr != nil {
		return perr
	}
	var maj, min int32
	var okMaj, okMin bool
	f := it.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		var perr *opError
		switch m.tag {
		case kmip14.TagProtocolVersionMajor:
			maj, perr = m.integer()
			okMaj = true
		case kmip14.TagProtocolVersionMinor:
			min, perr = m.integer()
			okMin = true
		}
		if perr != nil {
			return perr
		}
	}
	if !okMaj || !okMin {
		return invalidMessage("the Protocol Version lacks its major or minor number")
	}
	h.ver, h.hasVersion = version{maj, min}, true
	return nil
}

// salvageVersion reads the Protocol Version of a message that failed the
// layout check, when its beginning is intact, so the error goes back in a
// version the client understands.
func salvageVersion(msg []byte, h *header) {
	if len(msg) < 2*hdrLen+hdrLen {
		return
	}
	// Request Message › Request Header › Protocol Version › Major, Minor.
	b := msg[hdrLen:]
	if len(b) < hdrLen || b[3] != byte(ttlv.TypeStructure) {
		return
	}
	b = b[hdrLen:]
	if len(b) < hdrLen || ttlv.Tag(uint32(b[0])<<16|uint32(b[1])<<8|uint32(b[2])) != kmip14.TagProtocolVersion {
		return
	}
	n := int(binary.BigEndian.Uint32(b[4:8]))
	if n < 32 || len(b) < hdrLen+n {
		return
	}
	var tmp header
	if err := check(b[:hdrLen+n], 0); err != nil {
		return
	}
	pv, _, _ := split(b)
	if parseVersion(pv, &tmp) == nil {
		h.ver, h.hasVersion = tmp.ver, true
	}
}

func parseBatchItem(it item) (bi batchItem) {
	if perr := it.structure(); perr != nil {
		bi.err = invalidMessage("a Batch Item must be a structure")
		return bi
	}
	f := it.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		switch m.tag {
		case kmip14.TagOperation:
			op, perr := m.enum()
			if perr != nil {
				bi.err = invalidMessage("%s", perr.msg)
				continue
			}
			bi.op, bi.hasOp = op, true
		case kmip14.TagUniqueBatchItemID:
			id, perr := m.bytes()
			if perr != nil {
				bi.err = invalidMessage("%s", perr.msg)
				continue
			}
			bi.id, bi.hasID = id, true
		case tagRequestPayload:
			if m.typ != ttlv.TypeStructure {
				bi.err = invalidMessage("the Request Payload must be a structure")
				continue
			}
			bi.payload, bi.hasPay = m, true
		case kmip14.TagMessageExtension:
			if crit, ok := m.find(kmip14.TagCriticalityIndicator); ok {
				if c, _ := crit.boolean(); c && bi.err == nil {
					bi.err = notSupported("critical message extensions are not supported")
				}
			}
		case kmip20.TagEphemeral:
		default:
			if bi.err == nil {
				bi.err = invalidMessage("unexpected %s in a Batch Item", tagName(m.tag))
			}
		}
	}
	if bi.err == nil {
		if t, bad := unknownTag(it.val); bad {
			bi.err = errf(kmip20.ResultReasonUnknownTag, "unknown tag %s", t)
		}
	}
	if bi.err == nil && !bi.hasOp {
		bi.err = invalidMessage("the Batch Item has no Operation")
	}
	if bi.err == nil && !bi.hasPay {
		bi.err = invalidMessage("the Batch Item has no Request Payload")
	}
	return bi
}

// response writes a Response Message. The header's Batch Count is patched
// when the message is finished, since a stopped batch answers fewer items
// than it asked.
type response struct {
	w         *writer
	ver       version
	countAt   int // offset of the Batch Count value
	count     int32
	maxSize   int
	itemMark  int
	itemHasOp bool
	itemOp    uint32
	itemID    []byte
	itemHasID bool
}

// start writes the message and header up to the Batch Count. Only the
// fields the client's version defines are written: Protocol Version, Time
// Stamp, Client Correlation Value (1.4+, when the client sent one) and
// Batch Count. No Server Correlation Value: PyKMIP rejects it.
func (r *response) start(w *writer, ver version, now time.Time, clientCorr []byte, maxSize int32) {
	r.w, r.ver, r.count, r.maxSize = w, ver, 0, int(maxSize)
	w.begin(tagResponseMessage)
	w.begin(tagResponseHeader)
	w.begin(kmip14.TagProtocolVersion)
	w.integer(kmip14.TagProtocolVersionMajor, ver.major)
	w.integer(kmip14.TagProtocolVersionMinor, ver.minor)
	w.end()
	w.datetime(kmip14.TagTimeStamp, now)
	if clientCorr != nil && ver.atLeast(1, 4) {
		w.text(kmip14.TagClientCorrelationValue, string(clientCorr))
	}
	w.integer(kmip14.TagBatchCount, 0)
	r.countAt = len(w.b) - 8
	w.end()
}

// beginItem opens a successful batch item; the handler then writes its
// Response Payload. fail replaces it if the handler does not succeed.
func (r *response) beginItem(hasOp bool, op uint32, id []byte, hasID bool) {
	r.itemMark = len(r.w.b)
	r.itemHasOp, r.itemOp, r.itemID, r.itemHasID = hasOp, op, id, hasID
	r.itemHead(uint32(kmip14.ResultStatusSuccess))
}

func (r *response) itemHead(status uint32) {
	w := r.w
	w.begin(tagBatchItem)
	if r.itemHasOp {
		w.enum(kmip14.TagOperation, r.itemOp)
	}
	if r.itemHasID {
		w.bytes(kmip14.TagUniqueBatchItemID, r.itemID)
	}
	w.enum(kmip14.TagResultStatus, status)
}

// endItem closes a successful item, or turns it into Response Too Large
// when it took the response over the client's Maximum Response Size (and
// returns that failure, which stops a batch like any other).
func (r *response) endItem() *opError {
	r.w.end()
	r.count++
	if r.maxSize > 0 && len(r.w.b) > r.maxSize {
		r.count--
		perr := errf(kmip20.ResultReasonResponseTooLarge,
			"the response is larger than the Maximum Response Size of %d bytes", r.maxSize)
		r.fail(perr)
		return perr
	}
	return nil
}

// fail discards what the current item wrote (zeroing it: it may hold key
// material) and writes a failed item in its place.
func (r *response) fail(e *opError) {
	w := r.w
	clear(w.b[r.itemMark:])
	w.b = w.b[:r.itemMark]
	w.stack = w.stack[:1] // only the Response Message stays open
	r.itemHead(uint32(kmip14.ResultStatusOperationFailed))
	w.enum(kmip14.TagResultReason, reasonFor(r.ver, e.reason))
	if e.msg != "" {
		w.text(kmip14.TagResultMessage, e.msg)
	}
	w.end()
	r.count++
}

// failItem writes a failed batch item for a request item.
func (r *response) failItem(hasOp bool, op uint32, id []byte, hasID bool, e *opError) {
	r.itemMark = len(r.w.b)
	r.itemHasOp, r.itemOp, r.itemID, r.itemHasID = hasOp, op, id, hasID
	r.fail(e)
}

// finish closes the message and patches the Batch Count.
func (r *response) finish() []byte {
	r.w.end()
	binary.BigEndian.PutUint32(r.w.b[r.countAt:], uint32(r.count))
	return r.w.b
}
