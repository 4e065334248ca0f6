package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms/audit"
)

// setFiles lists the files of the log at path, oldest first.
func setFiles(t *testing.T, path string) []string {
	t.Helper()
	rotated, _ := filepath.Glob(path + ".*-*")
	first := func(name string) uint64 {
		a, _, _ := strings.Cut(strings.TrimPrefix(name, path+"."), "-")
		n, _ := strconv.ParseUint(a, 10, 64)
		return n
	}
	slices.SortFunc(rotated, func(a, b string) int { return int(first(a)) - int(first(b)) })
	if _, err := os.Stat(path); err == nil {
		rotated = append(rotated, path)
	}
	return rotated
}

// rotatingLog writes n records to a log rotating past maxBytes, syncing now
// and then so that rotation happens both within and between groups.
func rotatingLog(t *testing.T, path string, n int, maxBytes int64) []string {
	t.Helper()
	l := open(t, path, audit.Options{MaxBytes: maxBytes})
	for i := range n {
		l.Record(t.Context(), rec(i))
		if i%7 == 0 {
			l.Sync(t.Context())
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return setFiles(t, path)
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func decode(t *testing.T, line []byte) audit.Entry {
	t.Helper()
	var e struct {
		audit.Entry
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	e.Entry.Hash = e.Hash
	return e.Entry
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	const maxBytes = 2000
	files := rotatingLog(t, path, 100, maxBytes)
	if len(files) < 5 {
		t.Fatalf("only %d files", len(files))
	}
	rep := mustVerify(t, path)
	if rep.Files != len(files) || rep.Records != 100+uint64(len(files)) || rep.LastSeq != rep.Records || rep.FirstSeq != 1 || !rep.HeadChecked {
		t.Fatalf("report %+v over %d files", rep, len(files))
	}
	keyID := audit.KeyID(keyOf(t, path))
	var prev string = audit.Genesis
	for i, f := range files {
		ls := lines(t, f)
		fi, _ := os.Stat(f)
		if fi.Size() > maxBytes && len(ls) > 2 {
			t.Errorf("%s: %d bytes in %d lines", f, fi.Size(), len(ls))
		}
		h := decode(t, ls[0])
		if h.Action != audit.HeaderAction || h.Key != keyID || h.Prev != prev {
			t.Errorf("%s: header %+v", f, h)
		}
		if i > 0 && h.Detail != "continues "+filepath.Base(files[i-1]) {
			t.Errorf("%s: header detail %q", f, h.Detail)
		}
		last := decode(t, ls[len(ls)-1])
		if i < len(files)-1 && files[i] != fmt.Sprintf("%s.%d-%d", path, h.Seq, last.Seq) {
			t.Errorf("%s holds %d to %d", f, h.Seq, last.Seq)
		}
		prev = last.Hash
	}
	// A restart continues the current file (no second header), then rotates on.
	before := len(lines(t, path))
	l := open(t, path, audit.Options{MaxBytes: 1 << 20})
	l.Record(t.Context(), rec(1))
	l.Close()
	if got := len(lines(t, path)); got != before+1 {
		t.Fatalf("restart: %d lines, was %d", got, before)
	}
	l = open(t, path, audit.Options{MaxBytes: maxBytes})
	for i := range 20 {
		l.Record(t.Context(), rec(i))
	}
	l.Close()
	if rep := mustVerify(t, path); rep.Records != 100+1+20+uint64(rep.Files) || rep.Files <= len(files) {
		t.Fatalf("after restart: %+v", rep)
	}
}

// Many goroutines recording and syncing against a tiny MaxBytes, with
// Verify running alongside: every record lands exactly once.
func TestRotationRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, audit.Options{MaxBytes: 4096, MaxWait: time.Minute, QueueSize: 64, MaxBatch: 16})
	const goroutines, each = 16, 300
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Record(t.Context(), rec(g*each+i))
				if i%50 == 0 {
					if err := l.Sync(t.Context()); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	stop := make(chan struct{})
	var checks atomic.Int64
	verified := make(chan error, 1)
	go func() {
		key := keyOf(t, path)
		for {
			select {
			case <-stop:
				verified <- nil
				return
			default:
			}
			if _, err := audit.Verify(path, key); err != nil {
				verified <- err
				return
			}
			checks.Add(1)
		}
	}()
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-verified; err != nil {
		t.Fatalf("Verify during rotation: %v", err)
	}
	rep := mustVerify(t, path)
	if _, dropped := l.Stats(); dropped != 0 || rep.Dropped != 0 {
		t.Fatalf("dropped %d/%d", dropped, rep.Dropped)
	}
	seen := map[string]int{}
	files := setFiles(t, path)
	for _, f := range files {
		for _, line := range lines(t, f) {
			if e := decode(t, line); e.Action != audit.HeaderAction {
				seen[e.RequestID]++
			}
		}
	}
	for i := range goroutines * each {
		if n := seen[fmt.Sprintf("req-%d", i)]; n != 1 {
			t.Fatalf("req-%d recorded %d times", i, n)
		}
	}
	if len(seen) != goroutines*each || rep.Records != uint64(goroutines*each+len(files)) ||
		rep.Files != len(files) || uint64(len(files)-1) != l.Rotations() {
		t.Fatalf("%d distinct records, report %+v, %d files, %d rotations", len(seen), rep, len(files), l.Rotations())
	}
	t.Logf("%d files, %d verifications during the run", len(files), checks.Load())
}

// A crash between a rotation's rename and the new file's header leaves no
// current file, or an empty one: Open continues the newest rotated file.
func TestRotationCrashRecovery(t *testing.T) {
	for _, empty := range []bool{false, true} {
		t.Run(fmt.Sprint("empty current file ", empty), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			rotatingLog(t, path, 30, 2000)
			ls := lines(t, path)
			first, last := decode(t, ls[0]).Seq, decode(t, ls[len(ls)-1]).Seq
			moved := fmt.Sprintf("%s.%d-%d", path, first, last)
			if err := os.Rename(path, moved); err != nil {
				t.Fatal(err)
			}
			if empty {
				os.WriteFile(path, nil, 0o600)
			}
			l := open(t, path, audit.Options{MaxBytes: 2000})
			l.Record(t.Context(), rec(1))
			l.Close()
			rep := mustVerify(t, path)
			if h := decode(t, lines(t, path)[0]); h.Seq != last+1 || h.Detail != "continues "+filepath.Base(moved) {
				t.Fatalf("header %+v", h)
			}
			if rep.LastSeq != last+2 {
				t.Fatalf("report %+v", rep)
			}
		})
	}
}

func TestRotationTamperingDetected(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		edit func(t *testing.T, files []string)
		file int // index of the file named, -1 for none
		line uint64
		want string
	}{
		{"middle file removed", func(t *testing.T, fs []string) { os.Remove(fs[2]) }, 3, 1, "a file of the set was removed"},
		{"record removed from a middle file", func(t *testing.T, fs []string) {
			ls := lines(t, fs[2])
			os.WriteFile(fs[2], bytes.Join(append(ls[:2], ls[3:]...), nil), 0o600)
		}, 2, 3, "missing"},
		{"record edited in a middle file", func(t *testing.T, fs []string) {
			ls := lines(t, fs[2])
			ls[1] = bytes.Replace(ls[1], []byte(`"user":"bob"`), []byte(`"user":"eve"`), 1)
			os.WriteFile(fs[2], bytes.Join(ls, nil), 0o600)
		}, 2, 2, "was changed"},
		{"records reordered in a middle file", func(t *testing.T, fs []string) {
			ls := lines(t, fs[2])
			ls[1], ls[2] = ls[2], ls[1]
			os.WriteFile(fs[2], bytes.Join(ls, nil), 0o600)
		}, 2, 2, "missing"},
		{"files swapped", func(t *testing.T, fs []string) {
			os.Rename(fs[1], fs[1]+".x")
			os.Rename(fs[2], fs[1])
			os.Rename(fs[1]+".x", fs[2])
		}, 1, 1, "missing"},
		{"rotated file cut short", func(t *testing.T, fs []string) {
			ls := lines(t, fs[2])
			os.WriteFile(fs[2], bytes.Join(ls[:len(ls)-1], nil), 0o600)
		}, 2, 0, "cut short or renamed"},
		{"current file cut beyond the head", func(t *testing.T, fs []string) {
			cur := fs[len(fs)-1]
			ls := lines(t, cur)
			os.WriteFile(cur, bytes.Join(ls[:len(ls)-1], nil), 0o600)
		}, -1, 0, "removed from its end"},
		{"current file removed", func(t *testing.T, fs []string) { os.Remove(fs[len(fs)-1]) }, -1, 0, "removed from its end"},
		{"whole set rewritten without the key", func(t *testing.T, fs []string) {
			prev := audit.Genesis
			for _, f := range fs {
				ls := lines(t, f)
				for i := range ls {
					e := decode(t, ls[i])
					e.Prev = prev
					ls[i], prev = seal(nil, e)
				}
				os.WriteFile(f, bytes.Join(ls, nil), 0o600)
			}
			e := decode(t, lines(t, fs[len(fs)-1])[0])
			os.WriteFile(audit.HeadPath(fs[len(fs)-1]), fmt.Appendf(nil, `{"seq":%d,"hash":%q}`, e.Seq, e.Hash), 0o600)
		}, 0, 1, "was changed"},
		{"current file replaced by an unkeyed one", func(t *testing.T, fs []string) {
			cur := fs[len(fs)-1]
			prev := decode(t, lines(t, fs[len(fs)-2])[len(lines(t, fs[len(fs)-2]))-1]).Hash
			ls := lines(t, cur)[1:] // no header: the old format
			for i := range ls {
				e := decode(t, ls[i])
				e.Seq, e.Prev = e.Seq-1, prev
				ls[i], prev = seal(nil, e)
			}
			os.WriteFile(cur, bytes.Join(ls, nil), 0o600)
			os.Remove(audit.HeadPath(cur))
		}, -2, 1, "unkeyed file after keyed ones"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"), "audit.log")
			files := rotatingLog(t, path, 60, 2000)
			if len(files) < 5 {
				t.Fatalf("%d files", len(files))
			}
			tc.edit(t, files)
			_, err := audit.Verify(path, keyOf(t, path))
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("not detected: %v", err)
			}
			wantFile := ""
			switch {
			case tc.file == -2:
				wantFile = files[len(files)-1]
			case tc.file >= 0:
				wantFile = files[tc.file]
			}
			if ve.File != wantFile || ve.Line != tc.line || !strings.Contains(ve.Reason, tc.want) || ve.WrongKey {
				t.Fatalf("got %v; want %s line %d: %q", err, wantFile, tc.line, tc.want)
			}
		})
	}
}

// Archiving the oldest files is allowed: Verify says where the set starts.
func TestRotationOldestArchived(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	files := rotatingLog(t, path, 60, 2000)
	os.Remove(files[0])
	os.Remove(files[1])
	rep := mustVerify(t, path)
	if want := decode(t, lines(t, files[2])[0]).Seq; rep.FirstSeq != want || rep.Files != len(files)-2 || !rep.HeadChecked {
		t.Fatalf("report %+v; want first %d", rep, want)
	}
}

// seal renders e as a line hashed with key (nil: the unkeyed SHA-256 of old
// versions) and returns the line and its hash.
func seal(key []byte, e audit.Entry) ([]byte, string) {
	body, _ := json.Marshal(e)
	line := rehash(key, append(body[:len(body)-1], `,"hash":"x"}`...))
	return line, string(line[len(line)-67 : len(line)-3])
}

func TestWrongKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	writeLog(t, path, 3)
	other, _, err := audit.LoadOrCreateKey(filepath.Join(dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = audit.Verify(path, other)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || !ve.WrongKey || ve.Line != 1 || !strings.Contains(ve.Reason, audit.KeyID(keyOf(t, path))) {
		t.Fatalf("verify with another key: %v", err)
	}
	if _, err := audit.Open(path, audit.Options{KeyFile: filepath.Join(dir, "other.key")}); err == nil || !strings.Contains(err.Error(), "wrong key file") {
		t.Fatalf("open with another key: %v", err)
	}
	// The same chain forged under another key but naming ours is tampering.
	ls := lines(t, path)
	prev := audit.Genesis
	for i := range ls {
		e := decode(t, ls[i])
		e.Prev = prev
		ls[i], prev = seal(other, e)
	}
	os.WriteFile(path, bytes.Join(ls, nil), 0o600)
	wantBreak(t, path, 1, "was changed")
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "sub", "audit.key")
	key, created, err := audit.LoadOrCreateKey(kf)
	if err != nil || !created || len(key) != audit.KeySize {
		t.Fatalf("create: %v %v %d", err, created, len(key))
	}
	if fi, _ := os.Stat(kf); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	again, created, err := audit.LoadOrCreateKey(kf)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("reload: %v %v", err, created)
	}
	os.Chmod(kf, 0o640)
	if _, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Options{KeyFile: kf}); err == nil || !strings.Contains(err.Error(), "group or others") {
		t.Fatalf("group-readable key: %v", err)
	}
	for name, data := range map[string][]byte{"short": make([]byte, 16), "zero": make([]byte, 32)} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600)
		if _, err := audit.LoadKey(p); err == nil {
			t.Errorf("%s key accepted", name)
		}
	}
}

// legacyLog writes a log as versions before audit keys did: unkeyed
// SHA-256, no header.
func legacyLog(t *testing.T, path string, n int) string {
	t.Helper()
	var b []byte
	prev := audit.Genesis
	for i := range n {
		r := rec(i)
		line, h := seal(nil, audit.Entry{Seq: uint64(i + 1), Time: r.Time.UTC(), User: r.User, Project: r.Project,
			Action: r.Action, SecretID: r.SecretID, Outcome: r.Outcome, RequestID: r.RequestID, Prev: prev})
		b, prev = append(b, line...), h
	}
	os.WriteFile(path, b, 0o600)
	os.WriteFile(audit.HeadPath(path), fmt.Appendf(nil, `{"seq":%d,"hash":%q}`, n, prev), 0o600)
	return prev
}

func TestUnkeyedLogSealed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	last := legacyLog(t, path, 5)
	key, _, _ := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if _, err := audit.Verify(path, key); err == nil || !strings.Contains(err.Error(), "no file of the log is keyed") {
		t.Fatalf("unkeyed log alone: %v", err)
	}
	l := open(t, path, audit.Options{})
	l.Record(t.Context(), rec(9))
	l.Close()
	old := path + ".1-5"
	if len(lines(t, old)) != 5 {
		t.Fatal("the unkeyed log was not moved aside whole")
	}
	h := decode(t, lines(t, path)[0])
	if h.Seq != 6 || h.Prev != last || h.Action != audit.HeaderAction || !strings.Contains(h.Detail, "unkeyed log audit.log.1-5") {
		t.Fatalf("header %+v", h)
	}
	rep := mustVerify(t, path)
	if rep.Files != 2 || rep.Unkeyed != 5 || rep.Records != 7 || !rep.HeadChecked {
		t.Fatalf("report %+v", rep)
	}
	// Without the key the old records can be rewritten consistently, but the
	// keyed header no longer chains to them.
	ls := lines(t, old)
	prev := audit.Genesis
	for i := range ls {
		e := decode(t, ls[i])
		e.User, e.Prev = "eve", prev
		ls[i], prev = seal(nil, e)
	}
	os.WriteFile(old, bytes.Join(ls, nil), 0o600)
	_, err := audit.Verify(path, key)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.File != path || ve.Line != 1 || !strings.Contains(ve.Reason, "does not chain") {
		t.Fatalf("rewritten unkeyed log: %v", err)
	}
}
