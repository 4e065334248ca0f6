package audit

import (
	"encoding/json"
	"testing"
	"time"
)

// The hand-written encoder must produce exactly what encoding/json does, so
// lines stay parseable and hashes stay stable whatever the field contents.
func TestAppendEntryMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 4, 5, 123456000, time.UTC)
	cases := []Entry{
		{Seq: 1, Time: at, Action: "create", Outcome: "ok", Prev: Genesis},
		{Seq: 42, Time: at.Add(time.Nanosecond), User: "alice", Project: "p1", Action: "read_payload",
			SecretID: "01a2012d-295f-7013-8a93-c63b0bf64e96", Outcome: "forbidden", RequestID: "req-1", Detail: "d", Prev: "ab"},
		{Seq: 3, Time: at, Action: HeaderAction, Outcome: "ok", Detail: "continues audit.log.1-2", Key: "0123456789abcdef", Prev: "cd"},
		{Seq: 7, Time: at.In(time.FixedZone("x", 3600)), User: "quote\" back\\slash <tag> & \n\t\x01 é \xff", Action: "a", Outcome: "o", Prev: "p"},
		{Time: time.Time{}, Action: "", Outcome: "", Prev: ""},
	}
	for _, e := range cases {
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEntry(nil, &e); string(got) != string(want) {
			t.Errorf("appendEntry:\n got %s\nwant %s", got, want)
		}
	}
}

// BenchmarkAppendLine is the writer's cost per line: keyed (HMAC-SHA256)
// against the unkeyed SHA-256 of old versions.
func BenchmarkAppendLine(b *testing.B) {
	e := Entry{Seq: 123456, Time: time.Now().UTC(), User: "bob", Project: "p1", Action: "read_payload",
		SecretID: "01a2012d-295f-7013-8a93-c63b0bf64e96", Outcome: "ok", RequestID: "req-1", Prev: Genesis}
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"sha256", nil}, {"hmac", make([]byte, KeySize)}} {
		b.Run(tc.name, func(b *testing.B) {
			mac, buf := newMAC(tc.key), make([]byte, 0, 512)
			for b.Loop() {
				buf = appendLine(buf[:0], &e, mac)
			}
		})
	}
}
