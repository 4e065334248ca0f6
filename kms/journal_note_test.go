package kms

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func noteRecords() []AuditRecord {
	return []AuditRecord{
		{},
		{Time: time.Date(2026, 12, 6, 14, 30, 1, 123456789, time.UTC), Project: "p1", User: "u1",
			Roles: "admin,creator", Source: "jwt:https://issuer", Protocol: "rest", Remote: "127.0.0.1:5",
			Action: "create", SecretID: "0193a4f0-0000-7000-8000-000000000000", Outcome: "ok",
			RequestID: "req-1", Detail: "state:  → active; name: \"\" → \"k\""},
		{Time: time.Date(1969, 7, 20, 20, 17, 0, 0, time.FixedZone("x", 3600)), Action: "delete",
			Detail: strings.Repeat("é", 300), Outcome: "forbidden"},
	}
}

func TestNoteRoundTrip(t *testing.T) {
	for _, rec := range noteRecords() {
		got, err := decodeNote(encodeNote(rec))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Time.Equal(rec.Time) || got.Time.Location() != time.UTC {
			t.Errorf("time %v, want %v in UTC", got.Time, rec.Time)
		}
		got.Time, rec.Time = time.Time{}, time.Time{}
		if got != rec {
			t.Errorf("decoded %+v, want %+v", got, rec)
		}
	}
}

// A WAL written before the binary notes holds JSON ones.
func TestNoteDecodesJSON(t *testing.T) {
	rec := noteRecords()[1]
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeNote(b)
	if err != nil || !got.Time.Equal(rec.Time) || got.Detail != rec.Detail || got.Action != rec.Action {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}

func TestNoteRefusesMalformed(t *testing.T) {
	good := encodeNote(noteRecords()[1])
	bad := [][]byte{nil, {}, {2}, good[:12], good[:len(good)-1], append(good[:len(good):len(good)], 0)}
	bad = append(bad, binary.BigEndian.AppendUint32(append([]byte{noteV1}, make([]byte, 8)...), 1e9))
	huge := append([]byte{noteV1}, make([]byte, 12)...)
	bad = append(bad, binary.AppendUvarint(huge, 1<<62))
	bad = append(bad, append(append([]byte{noteV1}, make([]byte, 12)...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f))
	for _, b := range bad {
		if rec, err := decodeNote(b); err == nil {
			t.Errorf("decodeNote(%x) = %+v, want an error", b, rec)
		}
	}
}

func BenchmarkNote(b *testing.B) {
	rec := noteRecords()[1]
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeNote(encodeNote(rec)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) { // the encoding notes had before
		b.ReportAllocs()
		for b.Loop() {
			j, _ := json.Marshal(rec)
			var out AuditRecord
			if err := json.Unmarshal(j, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestNoteCoversEveryField: every field of AuditRecord is in a note, so a
// field added to the record is not silently lost between the WAL and the
// audit trail. Each string field, set alone, must come back.
func TestNoteCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[AuditRecord]()
	var rec AuditRecord
	if n := len(rec.noteFields()) + 1; typ.NumField() != n { // + Time
		t.Fatalf("AuditRecord has %d fields, a note carries %d: add the new one to noteFields", typ.NumField(), n)
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.String {
			continue
		}
		var one AuditRecord
		reflect.ValueOf(&one).Elem().Field(i).SetString("v-" + f.Name)
		got, err := decodeNote(encodeNote(one))
		if err != nil || got != one {
			t.Errorf("field %s: decoded %+v, %v", f.Name, got, err)
		}
	}
}
