package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"slices"
)

// decodeLine checks one line's own hash with mac and decodes it (without
// its newline).
func decodeLine(line []byte, mac hash.Hash) (Entry, error) {
	var e Entry
	i := bytes.LastIndex(line, []byte(hashMember))
	if i < 0 || len(line) != i+len(hashMember)+64+2 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return e, errors.New("no hash member at the end of the line")
	}
	hash := string(line[i+len(hashMember) : len(line)-2])
	body := make([]byte, 0, i+1)
	body = append(append(body, line[:i]...), '}')
	mac.Reset()
	mac.Write(body)
	if hex.EncodeToString(mac.Sum(nil)) != hash {
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
	Files    int    // files of the set checked, oldest first
	Records  uint64 // complete records checked, file headers included
	FirstSeq uint64 // > 1 when the set's oldest files were archived or removed
	LastSeq  uint64
	LastHash string
	KeyID    string // the audit key that chains the set
	// Unkeyed counts records of files from before audit keys: sealed by the
	// keyed record after them, but not keyed themselves.
	Unkeyed   uint64
	Dropped   uint64 // records the writer reported dropped (audit_dropped)
	Recovered int    // torn records cut off at restarts (audit_recovered)
	// Partial is set when the current file ends in an incomplete line: a
	// writer is appending right now, or died mid-write and has not restarted.
	Partial bool
	// HeadChecked says the head file was present and agreed.
	HeadChecked bool
}

// VerifyError locates the first break in the chain.
type VerifyError struct {
	File   string // the file of the break; "" for the set as a whole
	Line   uint64 // 1-based line number in File; 0: the file as a whole
	Seq    uint64 // the sequence number expected there
	Reason string
	// WrongKey says the set is chained under another key than the one
	// given: a configuration error, not evidence of tampering.
	WrongKey bool
}

func (e *VerifyError) Error() string {
	where := "audit log"
	if e.File != "" {
		where += " " + e.File
	}
	if e.Line == 0 {
		return where + ": " + e.Reason
	}
	return fmt.Sprintf("%s: line %d (record %d): %s", where, e.Line, e.Seq, e.Reason)
}

// Verify reads every file of the log at path, oldest first, and checks
// that each is chained under key (its header names the key), every
// record's HMAC, that each record names its predecessor's hash, across
// files too, that sequence numbers run without gaps, that each rotated
// file holds the records its name says, and, when the head file exists,
// that the set reaches it. Only a set's oldest files may be missing
// (archived): Report.FirstSeq says where it starts.
//
// It only reads, so it can run while a writer appends and rotates.
func Verify(path string, key []byte) (Report, error) {
	if len(key) != KeySize {
		return Report{}, fmt.Errorf("audit: the key must be %d bytes, not %d", KeySize, len(key))
	}
	head, headErr := readHead(path) // first: it never leads the files read after it
	set, err := snapshot(path)
	if err != nil {
		return Report{}, err
	}
	if cur := set[len(set)-1].f; cur != nil {
		defer cur.Close()
	}
	return verifySet(set, head, headErr, key)
}

// snapshot returns the set as it stood at one moment, even while the
// writer rotates: it opens the current file before listing the rotated
// ones (so none older than it is missed), and then leaves out those from
// its first record on (it, or newer, rotated since).
func snapshot(path string) ([]setFile, error) {
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	set, err := listRotated(path)
	if err != nil {
		if cur != nil {
			cur.Close()
		}
		return nil, err
	}
	if cur == nil {
		if len(set) == 0 {
			return nil, err0(path)
		}
		return set, nil
	}
	// Read now, after the listing: an empty file had not rotated yet.
	line, _ := bufio.NewReader(io.NewSectionReader(cur, 0, 1<<20)).ReadBytes('\n')
	var first struct {
		Seq uint64 `json:"seq"`
	}
	if json.Unmarshal(line, &first) == nil && first.Seq > 0 {
		set = slices.DeleteFunc(set, func(s setFile) bool { return s.first >= first.Seq })
	}
	return append(set, setFile{path: path, f: cur}), nil
}

func err0(path string) error {
	_, err := os.Stat(path) // the not-exist error, with its path
	if err == nil {
		err = &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	return err
}

// verifier walks a set's chain, file after file.
type verifier struct {
	rep             Report
	keyed, unkeyed  hash.Hash
	prev            string
	seq             uint64
	head            Head
	headErr         error
	headHash        string
	sawKeyed, first bool
	lastJ           uint64 // the last journal number seen, if jKnown
	jKnown          bool
}

func verifySet(set []setFile, head Head, headErr error, key []byte) (Report, error) {
	v := &verifier{rep: Report{KeyID: KeyID(key)}, keyed: newMAC(key), unkeyed: newMAC(nil),
		prev: Genesis, head: head, headErr: headErr, first: true}
	for i, sf := range set {
		if err := v.file(sf, i == len(set)-1); err != nil {
			return v.rep, err
		}
	}
	rep, seq := &v.rep, v.seq
	rep.LastSeq, rep.LastHash = seq, v.prev
	if rep.FirstSeq == 0 && rep.Records > 0 {
		rep.FirstSeq = 1
	}
	switch {
	case rep.Records > 0 && !v.sawKeyed:
		return *rep, &VerifyError{Reason: "no file of the log is keyed: it was written before audit keys (start the server once to seal it) or forged"}
	case errors.Is(headErr, fs.ErrNotExist):
	case headErr != nil:
		return *rep, &VerifyError{Reason: "head file unreadable: " + headErr.Error()}
	case head.Seq > seq:
		return *rep, &VerifyError{Reason: fmt.Sprintf("the log ends at record %d but had reached record %d: records were removed from its end", seq, head.Seq)}
	case head.Seq > 0 && v.headHash != head.Hash:
		return *rep, &VerifyError{Reason: fmt.Sprintf("record %d differs from the one the head file recorded: the log was rewritten", head.Seq)}
	default:
		rep.HeadChecked = true
	}
	return *rep, nil
}

// journal checks the j numbers: each journal record's is one more than
// the last, and a header's is the last before it (old lines have none).
// The first journal record of a set may have any number: a new trail on a
// store that journaled before.
func (v *verifier) journal(e Entry) string {
	switch {
	case e.Action == HeaderAction:
		if v.jKnown && e.J != v.lastJ {
			return fmt.Sprintf("the header says journal record %d came last, but the set before it ends at %d: journal records were removed", e.J, v.lastJ)
		}
	case e.J == 0:
		return ""
	case v.lastJ > 0 && e.J != v.lastJ+1: // the first may start anywhere (a new trail)
		return fmt.Sprintf("journal record %d follows journal record %d: records are missing or repeated", e.J, v.lastJ)
	}
	v.lastJ, v.jKnown = e.J, true
	return ""
}

// file checks one file of the set; last says it is the newest.
func (v *verifier) file(sf setFile, last bool) error {
	f := sf.f
	if f == nil {
		var err error
		if f, err = os.Open(sf.path); err != nil {
			return err
		}
		defer f.Close()
	}
	rep := &v.rep
	rep.Files++
	var mac hash.Hash
	var fileFirst uint64
	fail := func(line uint64, reason string) error {
		return &VerifyError{File: sf.path, Line: line, Seq: v.seq + 1, Reason: reason}
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for n := uint64(1); ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			switch {
			case len(line) > 0 && (sf.rotated() || !last):
				return fail(n, "incomplete line in a file that was closed")
			case len(line) > 0:
				rep.Partial = true
			case n == 1 && sf.rotated():
				return fail(0, "empty file")
			}
			break
		}
		if err != nil {
			return err
		}
		line = line[:len(line)-1]
		if n == 1 {
			k, err := lineKey(line)
			switch {
			case err != nil:
				return fail(1, err.Error())
			case k == "" && v.sawKeyed:
				return fail(1, "unkeyed file after keyed ones: only logs from before audit keys are unkeyed")
			case k == "":
				mac = v.unkeyed
			case k != rep.KeyID:
				return &VerifyError{File: sf.path, Line: 1, Seq: v.seq + 1, WrongKey: true,
					Reason: fmt.Sprintf("chained under audit key %s, not under the given key %s: wrong key file", k, rep.KeyID)}
			default:
				mac, v.sawKeyed = v.keyed, true
			}
		}
		e, derr := decodeLine(line, mac)
		if derr != nil {
			return fail(n, derr.Error())
		}
		if n == 1 {
			fileFirst = e.Seq
			// Only whole keyed files may be missing before the set (archived):
			// an unkeyed log always began at record 1.
			if v.first && mac == v.keyed && e.Seq > 1 {
				rep.FirstSeq, v.seq, v.prev = e.Seq, e.Seq-1, e.Prev
			}
		}
		switch {
		case e.Seq > v.seq+1 && n == 1 && !v.first:
			return fail(n, fmt.Sprintf("records %d to %d are missing: a file of the set was removed", v.seq+1, e.Seq-1))
		case e.Seq > v.seq+1:
			return fail(n, fmt.Sprintf("records %d to %d are missing", v.seq+1, e.Seq-1))
		case e.Seq != v.seq+1:
			return fail(n, fmt.Sprintf("sequence goes back to %d: records were reordered or repeated", e.Seq))
		case e.Prev != v.prev:
			return fail(n, "does not chain to the previous record: a record before it was removed or changed")
		}
		switch e.Action {
		case "audit_dropped":
			var k uint64
			fmt.Sscanf(e.Detail, "%d", &k)
			rep.Dropped += k
		case "audit_recovered":
			rep.Recovered++
		}
		if mac == v.unkeyed {
			rep.Unkeyed++
		}
		if err := v.journal(e); err != "" {
			return fail(n, err)
		}
		v.seq, v.prev, v.first = e.Seq, e.Hash, false
		rep.Records++
		if v.headErr == nil && e.Seq == v.head.Seq {
			v.headHash = e.Hash
		}
	}
	if sf.rotated() && (fileFirst != sf.first || v.seq != sf.last) {
		return fail(0, fmt.Sprintf("holds records %d to %d but is named for %d to %d: it was cut short or renamed", fileFirst, v.seq, sf.first, sf.last))
	}
	return nil
}
