package audit

import (
	"encoding/hex"
	"encoding/json"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Entry is one line of the log.
type Entry struct {
	Seq uint64 `json:"seq"`
	// J is the store journal's LSN of the change this line records (see
	// Append); on a file's header, the last J before it. 0: none.
	J         uint64    `json:"j,omitempty"`
	Time      time.Time `json:"time"`
	User      string    `json:"user,omitempty"`
	Project   string    `json:"project,omitempty"`
	Roles     string    `json:"roles,omitempty"`
	Source    string    `json:"source,omitempty"`
	Protocol  string    `json:"protocol,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	Action    string    `json:"action"`
	SecretID  string    `json:"secret_id,omitempty"`
	Outcome   string    `json:"outcome"`
	RequestID string    `json:"request_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	// Key is the KeyID of the audit key, on a file's header record only.
	Key string `json:"key,omitempty"`
	// Prev is the hash of the previous line (Genesis for the first).
	Prev string `json:"prev"`
	// Hash is the HMAC of the line's bytes without its hash member; it is
	// always the line's last member.
	Hash string `json:"-"`
	// stands for the records an audit_dropped entry counts (its Detail
	// says how many), so that losing it loses the count, not one record.
	stands uint64
}

// Genesis is the Prev of the first record.
var Genesis = strings.Repeat("0", 64)

// HeaderAction is the action of the record that starts every file.
const HeaderAction = "audit_file"

// hashMember is how every line ends: `,"hash":"<64 hex>"}`.
const hashMember = `,"hash":"`

// appendLine appends e's line (with its newline) to b, hashed with mac,
// and sets e.Hash.
func appendLine(b []byte, e *Entry, mac hash.Hash) []byte {
	start := len(b)
	b = appendEntry(b, e)
	mac.Reset()
	mac.Write(b[start:])
	var sum [32]byte
	b = append(b[:len(b)-1], hashMember...) // the closing brace goes after the hash
	at := len(b)
	b = hex.AppendEncode(b, mac.Sum(sum[:0]))
	e.Hash = string(b[at:])
	return append(b, '"', '}', '\n')
}

// appendEntry writes e as encoding/json would (same members, order and
// bytes; a test holds it to that) without reflection: it runs once per
// audited request.
func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	if e.J != 0 {
		b = append(b, `,"j":`...)
		b = strconv.AppendUint(b, e.J, 10)
	}
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendMember(b, "user", e.User, true)
	b = appendMember(b, "project", e.Project, true)
	b = appendMember(b, "roles", e.Roles, true)
	b = appendMember(b, "source", e.Source, true)
	b = appendMember(b, "protocol", e.Protocol, true)
	b = appendMember(b, "remote", e.Remote, true)
	b = appendMember(b, "action", e.Action, false)
	b = appendMember(b, "secret_id", e.SecretID, true)
	b = appendMember(b, "outcome", e.Outcome, false)
	b = appendMember(b, "request_id", e.RequestID, true)
	b = appendMember(b, "detail", e.Detail, true)
	b = appendMember(b, "key", e.Key, true)
	b = appendMember(b, "prev", e.Prev, false)
	return append(b, '}')
}

func appendMember(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(v) // anything to escape: encoding/json's rules exactly
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}
