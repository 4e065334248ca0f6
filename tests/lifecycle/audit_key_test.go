package lifecycle

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
)

// unkeyedLine renders a line the way versions before audit keys did: plain
// SHA-256 of the line without its hash member.
func unkeyedLine(body string) (line, hash string) {
	sum := sha256.Sum256([]byte(body))
	hash = hex.EncodeToString(sum[:])
	return body[:len(body)-1] + `,"hash":"` + hash + `"}` + "\n", hash
}

// The server keys its trail with <data-dir>/audit.key; verify needs that
// key, names a wrong one as such, and catches a whole log re-chained by
// someone without it.
func TestAuditKeyedTrail(t *testing.T) {
	dir := t.TempDir()
	srv, c := start(t, dir)
	p := c.order("passphrase", map[string]any{"consumer": consumer("cloudstack", "volume", "v1")})
	c.must(http.StatusOK, "GET", p+"/payload", nil, "Accept", "text/plain")
	srv.Stop(t)

	keyFile := filepath.Join(dir, "audit.key")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("audit.key: %v %v", fi, err)
	}
	out, err := testserver.Run(t, "audit", "verify", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "OK") || !strings.Contains(out, "in 1 file,") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}

	other := filepath.Join(t.TempDir(), "other.key")
	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	os.WriteFile(other, otherKey, 0o600)
	out, err = testserver.Run(t, "audit", "verify", "--data-dir", dir, "--key-file", other)
	if err == nil || !strings.Contains(out, "WRONG KEY") {
		t.Fatalf("verify with another key: %v\n%s", err, out)
	}
	os.Chmod(other, 0o644)
	out, err = testserver.Run(t, "audit", "verify", "--data-dir", dir, "--key-file", other)
	if err == nil || !strings.Contains(out, "group or others") {
		t.Fatalf("verify with a world-readable key: %v\n%s", err, out)
	}

	// Rewrite every record with a consistent unkeyed chain and head.
	logPath := filepath.Join(dir, "audit.log")
	b, _ := os.ReadFile(logPath)
	var forged strings.Builder
	prev, n := strings.Repeat("0", 64), 0
	for _, line := range strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n") {
		i := strings.LastIndex(line, `,"hash":"`)
		body := line[:i] + "}"
		body = body[:strings.LastIndex(body, `"prev":"`)] + `"prev":"` + prev + `"}`
		body = strings.Replace(body, `"outcome":"ok"`, `"outcome":"forbidden"`, 1)
		var l string
		l, prev = unkeyedLine(body)
		forged.WriteString(l)
		n++
	}
	os.WriteFile(logPath, []byte(forged.String()), 0o600)
	os.WriteFile(logPath+".head", fmt.Appendf(nil, `{"seq":%d,"hash":%q}`, n, prev), 0o600)
	out, err = testserver.Run(t, "audit", "verify", "--data-dir", dir)
	if err == nil || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "line 1") {
		t.Fatalf("forged chain not detected: %v\n%s", err, out)
	}
}

// A log written before audit keys is moved aside as audit.log.1-<n> and
// sealed by the first keyed record, which chains to its last hash.
func TestAuditUnkeyedLogUpgraded(t *testing.T) {
	dir := t.TempDir()
	var old bytes.Buffer
	prev := strings.Repeat("0", 64)
	for i := 1; i <= 3; i++ {
		line, h := unkeyedLine(fmt.Sprintf(`{"seq":%d,"time":"2026-01-0%dT00:00:00Z","user":"bob","project":"p1","action":"read_payload","secret_id":"s%d","outcome":"ok","prev":"%s"}`, i, i, i, prev))
		old.WriteString(line)
		prev = h
	}
	os.WriteFile(filepath.Join(dir, "audit.log"), old.Bytes(), 0o600)
	os.WriteFile(filepath.Join(dir, "audit.log.head"), fmt.Appendf(nil, `{"seq":3,"hash":%q}`, prev), 0o600)

	srv, c := start(t, dir)
	c.order("key", map[string]any{"bit_length": 256, "algorithm": "aes"})
	srv.Stop(t)
	if b, err := os.ReadFile(filepath.Join(dir, "audit.log.1-3")); err != nil || !bytes.Equal(b, old.Bytes()) {
		t.Fatalf("the unkeyed log was not kept whole as audit.log.1-3: %v", err)
	}
	out, err := testserver.Run(t, "audit", "verify", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "in 2 files") || !strings.Contains(out, "the first 3 records predate the audit key") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}
