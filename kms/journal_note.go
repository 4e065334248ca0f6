package kms

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"
)

// A journal note is the change's AuditRecord in the WAL. It is encoded on
// every change and decoded by the store's committer, the one goroutine all
// writes pass through, so it is a flat binary form rather than reflective
// JSON: a version byte, the time as Unix seconds and nanoseconds, then the
// strings, each a uvarint length and its bytes. Notes written before it
// were JSON objects ('{'); decodeNote still reads them from an older WAL.

const noteV1 = 1

func encodeNote(rec AuditRecord) []byte {
	fields := rec.noteFields()
	n := 1 + 12
	for _, f := range fields {
		n += 2 + len(*f) // lengths under 16 KiB take 2 bytes; append grows past
	}
	b := make([]byte, 1, n)
	b[0] = noteV1
	b = binary.BigEndian.AppendUint64(b, uint64(rec.Time.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(rec.Time.Nanosecond()))
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(*f)))
		b = append(b, *f...)
	}
	return b
}

var errNote = errors.New("kms: malformed journal note")

func decodeNote(b []byte) (AuditRecord, error) {
	var rec AuditRecord
	if len(b) > 0 && b[0] == '{' {
		err := json.Unmarshal(b, &rec)
		return rec, err
	}
	if len(b) < 13 || b[0] != noteV1 {
		return rec, errNote
	}
	sec, nsec := int64(binary.BigEndian.Uint64(b[1:])), binary.BigEndian.Uint32(b[9:])
	if nsec >= 1e9 {
		return rec, errNote
	}
	rec.Time = time.Unix(sec, int64(nsec)).UTC()
	// One string for all the fields: one allocation.
	rest := string(b[13:])
	for _, f := range rec.noteFields() {
		l, k := uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return AuditRecord{}, errNote
		}
		*f, rest = rest[k:k+int(l)], rest[k+int(l):]
	}
	if rest != "" {
		return AuditRecord{}, errNote
	}
	return rec, nil
}

// noteFields are the record's strings in their order in a note.
func (r *AuditRecord) noteFields() [11]*string {
	return [11]*string{&r.Project, &r.User, &r.Roles, &r.Source, &r.Protocol, &r.Remote,
		&r.Action, &r.SecretID, &r.Outcome, &r.RequestID, &r.Detail}
}

// uvarint is binary.Uvarint over a string (no copy to bytes).
func uvarint(s string) (uint64, int) {
	var x uint64
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -1 // overflow
			}
			return x | uint64(c)<<(7*i), i + 1
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	return 0, 0
}
