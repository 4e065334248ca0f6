package audit

import (
	"encoding/json"
	"os"
	"time"
)

// headInterval bounds how often the head file is rewritten under load (a
// write and a rename each time); Sync and Close always bring it up to date.
const headInterval = 100 * time.Millisecond

// Head is the chain's last record as of the last group, kept next to the log
// (path + ".head") so that Verify can tell a log cut short at its end.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// HeadPath is where the head of the log at path is kept.
func HeadPath(path string) string { return path + ".head" }

// writeHead replaces the head file atomically (write, rename). It is not
// fsynced: after a crash it may lag the log, which Verify accepts; it can
// never lead it, since it is written after the log's fsync.
func (l *Log) writeHead() {
	l.headAt, l.headDirty = time.Now(), false
	b, _ := json.Marshal(Head{Seq: l.seq, Hash: l.prev})
	tmp := HeadPath(l.path) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		l.log.Warn("audit: head not updated", "error", err)
		return
	}
	if err := os.Rename(tmp, HeadPath(l.path)); err != nil {
		l.log.Warn("audit: head not updated", "error", err)
	}
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
