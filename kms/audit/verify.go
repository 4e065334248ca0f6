package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// decodeLine checks one line's own hash and decodes it (without newline).
func decodeLine(line []byte) (Entry, error) {
	var e Entry
	i := bytes.LastIndex(line, []byte(hashMember))
	if i < 0 || len(line) != i+len(hashMember)+64+2 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return e, errors.New("no hash member at the end of the line")
	}
	hash := string(line[i+len(hashMember) : len(line)-2])
	body := make([]byte, 0, i+1)
	body = append(append(body, line[:i]...), '}')
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != hash {
		return e, errors.New("hash does not match the record: the record was changed")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("unreadable record: %v", err)
	}
	// Re-encoding must give the same bytes: no member was added, doubled or
	// reformatted in a way the hash alone would not show as ours.
	if again, err := json.Marshal(&e); err != nil || !bytes.Equal(again, body) {
		return e, errors.New("record is not in canonical form")
	}
	e.Hash = hash
	return e, nil
}

// Report sums up a verified log.
type Report struct {
	Records   uint64 // complete records checked
	LastSeq   uint64
	LastHash  string
	Dropped   uint64 // records the writer reported dropped (audit_dropped)
	Recovered int    // torn records cut off at restarts (audit_recovered)
	// Partial is set when the file ends in an incomplete line: a writer is
	// appending right now, or died mid-write and has not restarted.
	Partial bool
	// HeadChecked says the head file was present and agreed.
	HeadChecked bool
}

// VerifyError locates the first break in the chain.
type VerifyError struct {
	Line   uint64 // 1-based line number; 0: the log as a whole
	Seq    uint64 // the sequence number expected there
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Line == 0 {
		return "audit log: " + e.Reason
	}
	return fmt.Sprintf("audit log: line %d (record %d): %s", e.Line, e.Seq, e.Reason)
}

// Verify reads the log at path from the start and checks every record's
// hash, that each names its predecessor's hash, that sequence numbers run
// without gaps, and, when the head file exists, that the log reaches it.
func Verify(path string) (Report, error) {
	var rep Report
	f, err := os.Open(path)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	prev, seq := Genesis, uint64(0)
	hashes := map[uint64]string{}
	head, headErr := readHead(path)
	r := bufio.NewReaderSize(f, 64<<10)
	for n := uint64(1); ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				rep.Partial = true
			}
			break
		}
		if err != nil {
			return rep, err
		}
		line = line[:len(line)-1]
		e, derr := decodeLine(line)
		if derr != nil {
			return rep, &VerifyError{Line: n, Seq: seq + 1, Reason: derr.Error()}
		}
		switch {
		case e.Seq > seq+1:
			return rep, &VerifyError{Line: n, Seq: seq + 1, Reason: fmt.Sprintf("records %d to %d are missing", seq+1, e.Seq-1)}
		case e.Seq != seq+1:
			return rep, &VerifyError{Line: n, Seq: seq + 1, Reason: fmt.Sprintf("sequence goes back to %d: records were reordered or repeated", e.Seq)}
		case e.Prev != prev:
			return rep, &VerifyError{Line: n, Seq: seq + 1, Reason: "does not chain to the previous record: a record before it was removed or changed"}
		}
		switch e.Action {
		case "audit_dropped":
			var k uint64
			fmt.Sscanf(e.Detail, "%d", &k)
			rep.Dropped += k
		case "audit_recovered":
			rep.Recovered++
		}
		seq, prev = e.Seq, e.Hash
		rep.Records++
		if headErr == nil && e.Seq == head.Seq {
			hashes[e.Seq] = e.Hash
		}
	}
	rep.LastSeq, rep.LastHash = seq, prev
	switch {
	case errors.Is(headErr, fs.ErrNotExist):
	case headErr != nil:
		return rep, &VerifyError{Reason: "head file unreadable: " + headErr.Error()}
	case head.Seq > seq:
		return rep, &VerifyError{Reason: fmt.Sprintf("the log ends at record %d but had reached record %d: records were removed from its end", seq, head.Seq)}
	case head.Seq > 0 && hashes[head.Seq] != head.Hash:
		return rep, &VerifyError{Reason: fmt.Sprintf("record %d differs from the one the head file recorded: the log was rewritten", head.Seq)}
	default:
		rep.HeadChecked = true
	}
	return rep, nil
}

func readHead(path string) (Head, error) {
	var h Head
	b, err := os.ReadFile(HeadPath(path))
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, err
	}
	return h, nil
}
