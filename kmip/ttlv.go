package kmip

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// The hot path of the server reads and writes TTLV bytes directly: gemalto's
// reflective ttlv.Marshal/Unmarshal cost ~0.5 ms per small message, this
// costs microseconds. Tags, types and enumerations come from gemalto's tables
// (kmip14, kmip20, ttlv); the encoding rules are KMIP 1.4 §9.1.
//
// Reading happens in two steps: check validates the layout of a whole
// message once (lengths, types, padding, nesting), after which item and
// fields walk it without allocating. Every accessor still checks its bounds,
// so a reader handed unvalidated bytes returns errors, never panics.

const (
	hdrLen = 8 // tag (3) + type (1) + length (4)

	// maxDepth bounds structure nesting. The deepest message KMIP defines
	// (Request Message › Batch Item › Payload › Template-Attribute ›
	// Attribute › Attribute Value › …) is well under it.
	maxDepth = 24
)

// Layout errors found by check; all answer Invalid Message.
var (
	errTruncated = errors.New("TTLV item is truncated")
	errBadTag    = errors.New("TTLV tag outside the KMIP ranges")
	errBadType   = errors.New("unknown TTLV item type")
	errBadLength = errors.New("TTLV length invalid for its type")
	errTooDeep   = errors.New("TTLV structures nested too deeply")
	errBadBool   = errors.New("TTLV Boolean other than 0 or 1")
)

// item is one decoded TTLV: its tag, type and value bytes (without padding).
// For a structure, val holds the encoded members.
type item struct {
	tag ttlv.Tag
	typ ttlv.Type
	val []byte
}

// padded is the space a value of n bytes takes on the wire.
func padded(n int) int { return (n + 7) &^ 7 }

// split reads the first item of b and returns the bytes after it. The
// header is decoded and checked by gemalto's ttlv.TTLV (tag range, type,
// the length each type requires); structures must also be whole multiples
// of 8 bytes, and the value with its padding must be present.
func split(b []byte) (it item, rest []byte, err error) {
	t := ttlv.TTLV(b)
	if err := t.ValidHeader(); err != nil {
		switch {
		case errors.Is(err, ttlv.ErrHeaderTruncated):
			return item{}, nil, errTruncated
		case errors.Is(err, ttlv.ErrInvalidTag):
			return item{}, nil, errBadTag
		case errors.Is(err, ttlv.ErrInvalidType):
			return item{}, nil, errBadType
		}
		return item{}, nil, errBadLength
	}
	if t.Type() == ttlv.TypeStructure && t.Len()%8 != 0 {
		return item{}, nil, errBadLength
	}
	full := t.FullLen()
	if full > len(b) || full < hdrLen {
		return item{}, nil, errTruncated
	}
	n := hdrLen + t.Len()
	val := b[hdrLen:n:n]
	// KMIP 1.4 §9.1.1.4: a Boolean is 0 or 1, nothing else; accepting 2 as
	// true would store it as a different value than was sent.
	if t.Type() == ttlv.TypeBoolean && binary.BigEndian.Uint64(val) > 1 {
		return item{}, nil, errBadBool
	}
	return item{tag: t.Tag(), typ: t.Type(), val: val}, b[full:], nil
}

// check validates the layout of every item in b, recursively.
func check(b []byte, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	for len(b) > 0 {
		it, rest, err := split(b)
		if err != nil {
			return err
		}
		if it.typ == ttlv.TypeStructure {
			if err := check(it.val, depth+1); err != nil {
				return err
			}
		}
		b = rest
	}
	return nil
}

// knownTags marks the standard tags (0x42xxxx) that gemalto's KMIP 1.4 and
// 2.0 tables define; extension tags (0x54xxxx) are always acceptable.
var knownTags = func() *[1 << 16]bool {
	var m [1 << 16]bool
	if e, ok := ttlv.DefaultRegistry.Tags().(*ttlv.Enum); ok {
		for _, v := range e.Values() {
			if v>>16 == 0x42 {
				m[v&0xffff] = true
			}
		}
	}
	return &m
}()

// tagKnown reports whether t is a tag this server can interpret.
func tagKnown(t ttlv.Tag) bool {
	switch uint32(t) >> 16 {
	case 0x42:
		return knownTags[uint32(t)&0xffff]
	case 0x54:
		return true
	}
	return false
}

// unknownTag returns the first tag in the (checked) items of b that no KMIP
// table defines.
func unknownTag(b []byte) (ttlv.Tag, bool) {
	for len(b) > 0 {
		it, rest, err := split(b)
		if err != nil {
			return 0, false
		}
		if !tagKnown(it.tag) {
			return it.tag, true
		}
		if it.typ == ttlv.TypeStructure {
			if t, ok := unknownTag(it.val); ok {
				return t, true
			}
		}
		b = rest
	}
	return 0, false
}

// fields iterates over the members of a structure.
type fields struct{ rest []byte }

func (it item) fields() fields {
	if it.typ != ttlv.TypeStructure {
		return fields{}
	}
	return fields{it.val}
}

// next returns the next member; ok is false at the end (or on bytes that
// were not checked and turn out malformed).
func (f *fields) next() (item, bool) {
	if len(f.rest) == 0 {
		return item{}, false
	}
	it, rest, err := split(f.rest)
	if err != nil {
		f.rest = nil
		return item{}, false
	}
	f.rest = rest
	return it, true
}

// find returns the first member of the structure with the tag.
func (it item) find(tag ttlv.Tag) (item, bool) {
	f := it.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		if m.tag == tag {
			return m, true
		}
	}
	return item{}, false
}

// Typed accessors. A value of the wrong type is the caller's fault: the
// error names the tag and answers Invalid Field (Invalid Data Type in 2.x).

func (it item) wrongType(want ttlv.Type) *opError {
	return errf(kmip20.ResultReasonInvalidDataType, "%s must be a %s, not a %s",
		tagName(it.tag), want, it.typ)
}

func (it item) text() (string, *opError) {
	if it.typ != ttlv.TypeTextString {
		return "", it.wrongType(ttlv.TypeTextString)
	}
	return string(it.val), nil
}

func (it item) bytes() ([]byte, *opError) {
	if it.typ != ttlv.TypeByteString {
		return nil, it.wrongType(ttlv.TypeByteString)
	}
	return it.val, nil
}

func (it item) integer() (int32, *opError) {
	if it.typ != ttlv.TypeInteger || len(it.val) != 4 {
		return 0, it.wrongType(ttlv.TypeInteger)
	}
	return int32(binary.BigEndian.Uint32(it.val)), nil
}

func (it item) enum() (uint32, *opError) {
	if it.typ != ttlv.TypeEnumeration || len(it.val) != 4 {
		return 0, it.wrongType(ttlv.TypeEnumeration)
	}
	return binary.BigEndian.Uint32(it.val), nil
}

func (it item) long() (int64, *opError) {
	if it.typ != ttlv.TypeLongInteger || len(it.val) != 8 {
		return 0, it.wrongType(ttlv.TypeLongInteger)
	}
	return int64(binary.BigEndian.Uint64(it.val)), nil
}

func (it item) boolean() (bool, *opError) {
	if it.typ != ttlv.TypeBoolean || len(it.val) != 8 {
		return false, it.wrongType(ttlv.TypeBoolean)
	}
	return binary.BigEndian.Uint64(it.val) != 0, nil
}

// datetime accepts a Date-Time and, from 2.0, a Date-Time Extended.
func (it item) datetime() (time.Time, *opError) {
	if len(it.val) != 8 {
		return time.Time{}, it.wrongType(ttlv.TypeDateTime)
	}
	v := int64(binary.BigEndian.Uint64(it.val))
	switch it.typ {
	case ttlv.TypeDateTime:
		return time.Unix(v, 0).UTC(), nil
	case ttlv.TypeDateTimeExtended:
		return time.UnixMicro(v).UTC(), nil
	}
	return time.Time{}, it.wrongType(ttlv.TypeDateTime)
}

func (it item) structure() *opError {
	if it.typ != ttlv.TypeStructure {
		return it.wrongType(ttlv.TypeStructure)
	}
	return nil
}

// tagName is the canonical KMIP name of a tag ("Cryptographic Algorithm"),
// or its hex form when no table has it.
func tagName(t ttlv.Tag) string { return t.CanonicalName() }

// writer appends TTLV to a byte slice. Structures are opened with begin and
// closed with end, which patches in their length.
type writer struct {
	b     []byte
	stack []int
}

func (w *writer) head(tag ttlv.Tag, typ ttlv.Type, n int) {
	w.b = append(w.b, byte(tag>>16), byte(tag>>8), byte(tag), byte(typ),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func (w *writer) begin(tag ttlv.Tag) {
	w.stack = append(w.stack, len(w.b))
	w.head(tag, ttlv.TypeStructure, 0)
}

func (w *writer) end() {
	start := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	binary.BigEndian.PutUint32(w.b[start+4:], uint32(len(w.b)-start-hdrLen))
}

func (w *writer) u32(tag ttlv.Tag, typ ttlv.Type, v uint32) {
	w.head(tag, typ, 4)
	w.b = append(w.b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v), 0, 0, 0, 0)
}

func (w *writer) u64(tag ttlv.Tag, typ ttlv.Type, v uint64) {
	w.head(tag, typ, 8)
	w.b = binary.BigEndian.AppendUint64(w.b, v)
}

func (w *writer) integer(tag ttlv.Tag, v int32) { w.u32(tag, ttlv.TypeInteger, uint32(v)) }
func (w *writer) enum(tag ttlv.Tag, v uint32)   { w.u32(tag, ttlv.TypeEnumeration, v) }
func (w *writer) datetime(tag ttlv.Tag, t time.Time) {
	w.u64(tag, ttlv.TypeDateTime, uint64(t.Unix()))
}

var zeros [8]byte

func (w *writer) raw(tag ttlv.Tag, typ ttlv.Type, v []byte) {
	w.head(tag, typ, len(v))
	w.b = append(w.b, v...)
	w.b = append(w.b, zeros[:padded(len(v))-len(v)]...)
}

func (w *writer) bytes(tag ttlv.Tag, v []byte) { w.raw(tag, ttlv.TypeByteString, v) }

func (w *writer) text(tag ttlv.Tag, s string) {
	w.head(tag, ttlv.TypeTextString, len(s))
	w.b = append(w.b, s...)
	w.b = append(w.b, zeros[:padded(len(s))-len(s)]...)
}

// item re-encodes a decoded item under a (possibly different) tag.
func (w *writer) item(tag ttlv.Tag, it item) { w.raw(tag, it.typ, it.val) }

// Short names for the tags used everywhere.
const (
	tagRequestMessage    = kmip14.TagRequestMessage
	tagResponseMessage   = kmip14.TagResponseMessage
	tagRequestHeader     = kmip14.TagRequestHeader
	tagResponseHeader    = kmip14.TagResponseHeader
	tagBatchItem         = kmip14.TagBatchItem
	tagRequestPayload    = kmip14.TagRequestPayload
	tagResponsePayload   = kmip14.TagResponsePayload
	tagUniqueIdentifier  = kmip14.TagUniqueIdentifier
	tagObjectType        = kmip14.TagObjectType
	tagAttribute         = kmip14.TagAttribute
	tagAttributeName     = kmip14.TagAttributeName
	tagAttributeIndex    = kmip14.TagAttributeIndex
	tagAttributeValue    = kmip14.TagAttributeValue
	tagAttributes        = kmip20.TagAttributes
	tagAttributeRef      = kmip20.TagAttributeReference
	tagTemplateAttribute = kmip14.TagTemplateAttribute
)
