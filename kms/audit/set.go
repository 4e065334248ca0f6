package audit

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// setFile is one file of a log's set.
type setFile struct {
	path        string
	first, last uint64   // from a rotated file's name; 0 for the current file
	f           *os.File // the current file, opened by snapshot
}

func (s setFile) rotated() bool { return s.last > 0 }

// rotatedName is where the file holding records first..last goes.
func rotatedName(path string, first, last uint64) string {
	return fmt.Sprintf("%s.%d-%d", path, first, last)
}

// listRotated returns the rotated files of the log at path, oldest first.
func listRotated(path string) ([]setFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var set []setFile
	for _, de := range ents {
		rest, ok := strings.CutPrefix(de.Name(), base+".")
		a, b, ok2 := strings.Cut(rest, "-")
		if !ok || !ok2 {
			continue
		}
		first, err1 := strconv.ParseUint(a, 10, 64)
		last, err2 := strconv.ParseUint(b, 10, 64)
		// Only names rotate itself writes; "01-5" or "5-1" are not of the set.
		if err1 != nil || err2 != nil || first == 0 || last < first || rest != fmt.Sprintf("%d-%d", first, last) {
			continue
		}
		set = append(set, setFile{path: filepath.Join(dir, de.Name()), first: first, last: last})
	}
	slices.SortFunc(set, func(x, y setFile) int { return compareU64(x.first, y.first) })
	return set, nil
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// newMAC returns what hashes a line: HMAC-SHA256 under key, or plain
// SHA-256 for the unkeyed files of old versions (key nil).
func newMAC(key []byte) hash.Hash {
	if key == nil {
		return sha256.New()
	}
	return hmac.New(sha256.New, key)
}

// lineKey returns the key member of a line: the key id of a file header,
// "" for any other record, and all lines of an unkeyed file.
func lineKey(line []byte) (string, error) {
	var m struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return "", fmt.Errorf("unreadable record: %v", err)
	}
	return m.Key, nil
}

// ends reads the first and the last complete line of f (without newlines)
// and the offset just after the last complete line; first is nil when f
// holds no complete line.
func ends(f *os.File, size int64) (first, last []byte, end int64, err error) {
	if size == 0 {
		return nil, nil, 0, nil
	}
	first, err = bufio.NewReader(io.NewSectionReader(f, 0, size)).ReadBytes('\n')
	if errors.Is(err, io.EOF) {
		return nil, nil, 0, nil // only a torn first line
	}
	if err != nil {
		return nil, nil, 0, err
	}
	first = first[:len(first)-1]
	start := max(0, size-tailSize)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, 0, err
	}
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 {
		return nil, nil, 0, fmt.Errorf("no complete record in its last %d bytes", tailSize)
	}
	end = start + int64(i) + 1
	// The last line starts after the newline before it; the first line
	// bounds the search when the file holds one line only.
	from := bytes.LastIndexByte(buf[:i], '\n') + 1
	if from == 0 && start > 0 {
		return nil, nil, 0, fmt.Errorf("a record longer than %d bytes", tailSize)
	}
	return first, buf[from:i], end, nil
}

// syncDir makes renames and new names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: syncing %s: %w", dir, err)
	}
	return nil
}
