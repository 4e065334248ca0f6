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

// TestKill9DuringCreates kills the server with SIGKILL while 64 clients
// create secrets; after a restart every secret that got a 201 is there with
// its exact payload.
func TestKill9DuringCreates(t *testing.T) {
	dir := t.TempDir()
	srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
	var (
		mu   sync.Mutex
		acks []created
		wg   sync.WaitGroup
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
	time.Sleep(700 * time.Millisecond)
	srv.Kill()
	close(stop)
	wg.Wait()
	if len(acks) < 100 {
		t.Fatalf("only %d creates acknowledged before the kill; the test proves nothing", len(acks))
	}
	srv2 := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dir})
	for _, a := range acks {
		// Refs carry the old port; ask the new server.
		ref := srv2.URL + a.ref[strings.Index(a.ref, "/v1/"):]
		if got := getPayload(t, srv2.URL, ref, "crash"); !bytes.Equal(got, a.payload) {
			t.Fatalf("secret %s: payload differs after restart", ref)
		}
	}
	t.Logf("%d acknowledged creates all survived SIGKILL", len(acks))
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
