package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/tests/testserver"
)

type created struct {
	ref     string
	payload []byte
}

func createSecret(c *http.Client, url, project string, payload []byte) (string, error) {
	body := fmt.Sprintf(`{"name":"crash","secret_type":"opaque","payload":"%s","payload_content_type":"application/octet-stream","payload_content_encoding":"base64"}`,
		base64.StdEncoding.EncodeToString(payload))
	req, _ := http.NewRequest("POST", url+"/v1/secrets", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Project-Id", project)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var r struct {
		Ref string `json:"secret_ref"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", err
	}
	return r.Ref, nil
}

func getPayload(t *testing.T, url, ref, project string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", ref+"/payload", nil)
	req.Header.Set("Accept", "application/octet-stream")
	req.Header.Set("X-Project-Id", project)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s/payload: %d %s", ref, resp.StatusCode, b)
	}
	return b
}

// TestKill9DuringCreates kills the server with SIGKILL at a random moment
// while 64 clients create secrets, three times over on the same data dir.
// After each restart every secret that got a 201 is there with its exact
// payload, the project's secret total (a counter) equals the secrets
// listed, every secret has its create record on the audit trail (the
// record rides in the store's WAL sync), the records' journal numbers j
// run 1, 2, ... without a gap, and `keywarden audit verify` passes.
func TestKill9DuringCreates(t *testing.T) {
	dir := t.TempDir()
	var acks []created
	for round := range 3 {
		srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
		if round > 0 {
			checkCreates(t, srv.URL, dir, acks)
		}
		n := len(acks)
		acks = createUntilKilled(t, srv, acks, time.Duration(100+mrand.IntN(700))*time.Millisecond)
		if len(acks)-n < 50 {
			t.Fatalf("round %d: only %d creates acknowledged before the kill; the test proves nothing", round, len(acks)-n)
		}
	}
	srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
	checkCreates(t, srv.URL, dir, acks)
	t.Logf("%d acknowledged creates over 3 kills all survived SIGKILL, each audited", len(acks))
}

func createUntilKilled(t *testing.T, srv *testserver.Server, acks []created, after time.Duration) []created {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	stop := make(chan struct{})
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := make([]byte, 48)
				rand.Read(p)
				ref, err := createSecret(c, srv.URL, "crash", p)
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acks = append(acks, created{ref, p})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(after)
	srv.Kill()
	close(stop)
	wg.Wait()
	return acks
}

// checkCreates checks a restarted server against what was acknowledged.
func checkCreates(t *testing.T, url, dir string, acks []created) {
	t.Helper()
	for _, a := range acks {
		// Refs carry the old port; ask the new server.
		ref := url + a.ref[strings.Index(a.ref, "/v1/"):]
		if got := getPayload(t, url, ref, "crash"); !bytes.Equal(got, a.payload) {
			t.Fatalf("secret %s: payload differs after restart", ref)
		}
	}
	listed := map[string]bool{}
	total := -1
	for next := url + "/v1/secrets?limit=100"; next != ""; {
		req, _ := http.NewRequest("GET", next, nil)
		req.Header.Set("X-Project-Id", "crash")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Total   int    `json:"total"`
			Next    string `json:"next"`
			Secrets []struct {
				Ref string `json:"secret_ref"`
			} `json:"secrets"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		total = page.Total
		for _, s := range page.Secrets {
			listed[s.Ref[strings.LastIndex(s.Ref, "/")+1:]] = true
		}
		next = page.Next
	}
	if total != len(listed) || len(listed) < len(acks) {
		t.Fatalf("total %d, %d secrets listed, %d acknowledged", total, len(listed), len(acks))
	}
	audited := map[string]bool{}
	var js []int
	for _, e := range auditEntries(t, filepath.Join(dir, "audit.log")) {
		if j, ok := e["j"].(float64); ok && e["action"] != "audit_file" {
			js = append(js, int(j))
		}
		if e["action"] == "create" && e["outcome"] == "ok" {
			audited[fmt.Sprint(e["secret_id"])] = true
		}
	}
	for id := range listed {
		if !audited[id] {
			t.Fatalf("secret %s exists without its create record", id)
		}
	}
	if len(js) < len(listed) {
		t.Fatalf("%d journal records for %d secrets", len(js), len(listed))
	}
	for i, j := range js {
		if j != i+1 {
			t.Fatalf("audit record %d of the journal has j=%d: a gap or a repeat", i+1, j)
		}
	}
	if out, err := testserver.Run(t, "audit", "verify", "--data-dir", dir); err != nil {
		t.Fatalf("keywarden audit verify: %v\n%s", err, out)
	}
}

// TestNoPlaintextAtRest stores recognisable payloads and scans every byte
// of the data dir for them (raw, base64 and hex).
func TestNoPlaintextAtRest(t *testing.T) {
	dir := t.TempDir()
	srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
	marker := []byte("KEYWARDEN-PLAINTEXT-MARKER-7f3a9c")
	var needles [][]byte
	for i := range 20 {
		p := append(append([]byte{}, marker...), byte('a'+i))
		if _, err := createSecret(http.DefaultClient, srv.URL, "scan", p); err != nil {
			t.Fatal(err)
		}
		needles = append(needles, p, []byte(base64.StdEncoding.EncodeToString(p)), []byte(hex.EncodeToString(p)))
	}
	needles = append(needles, marker[:20])
	srv.Stop(t)
	files := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s contains a payload in the clear (%q)", path, n)
			}
		}
		return nil
	})
	if files < 2 {
		t.Fatalf("scanned only %d files", files)
	}
}
