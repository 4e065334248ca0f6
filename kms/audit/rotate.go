package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DefaultMaxBytes is the size past which a file is rotated by default.
const DefaultMaxBytes = 256 << 20

// continueSet takes the chain's head from the newest rotated file, for an
// empty current file: new, or a crash came between a rotation's rename
// and the new file's header.
func (l *Log) continueSet() error {
	set, err := listRotated(l.path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if len(set) == 0 {
		return nil // a new log
	}
	newest := set[len(set)-1]
	f, err := os.Open(newest.path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	first, last, end, err := ends(f, fi.Size())
	if err == nil && (first == nil || end != fi.Size()) {
		err = errors.New("incomplete")
	}
	var key string
	if err == nil {
		key, err = lineKey(first)
	}
	if err == nil && key != "" && key != l.keyID {
		return fmt.Errorf("audit: %s is chained under audit key %s, but the key file holds key %s: wrong key file", newest.path, key, l.keyID)
	}
	var e Entry
	if err == nil {
		mac := l.mac
		if key == "" { // moved aside by the step that seals it
			mac, l.prevUnkeyed = newMAC(nil), true
		}
		e, err = decodeLine(last, mac)
	}
	if err == nil && e.Seq != newest.last {
		err = fmt.Errorf("ends at record %d", e.Seq)
	}
	if err != nil {
		return fmt.Errorf("audit: cannot continue the chain of %s: %v; run `keywarden audit verify`", newest.path, err)
	}
	l.seq, l.prev, l.prevFile = e.Seq, e.Hash, filepath.Base(newest.path)
	return nil
}

// rotateRetry is how long the writer goes on past MaxBytes after a failed
// rotation before it tries again: records matter more than file sizes.
const rotateRetry = time.Minute

// rotate renames the current file, all of it fsynced, to
// path.<first>-<last> and puts an empty file in its place; the next
// writeFile starts it with a header chained to the last record.
func (l *Log) rotate() error {
	if l.dirty() {
		if err := l.syncFile(); err != nil {
			return err
		}
	}
	name := rotatedName(l.path, l.first, l.seq)
	if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s already exists: not replacing it", name) // only tampering gets here
	}
	if err := os.Rename(l.path, name); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		// Put the old file back and go on appending to it.
		return errors.Join(err, os.Rename(name, l.path))
	}
	// Both names must be durable before the new file holds a record.
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		l.log.Warn("audit: rotation not yet durable", "error", err)
	}
	l.f.Close()
	l.f, l.size, l.first, l.hdrEnd = f, 0, 0, 0
	l.prevFile, l.prevUnkeyed, l.unkeyed = filepath.Base(name), l.unkeyed, false
	l.rotations.Add(1)
	return nil
}
