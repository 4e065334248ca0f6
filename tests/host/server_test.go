package host

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the module root, two levels up from this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var builds struct {
	sync.Mutex
	dir  string
	bins map[string]string
	errs map[string]error
}

// build compiles ./cmd/<name> once per test process, with optional build
// tags.
func build(t *testing.T, name string, tags ...string) (string, error) {
	builds.Lock()
	defer builds.Unlock()
	if builds.bins == nil {
		builds.bins, builds.errs = map[string]string{}, map[string]error{}
		dir, err := os.MkdirTemp("", "kw-host-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir = dir
	}
	key := name + "+" + strings.Join(tags, ",")
	if p, ok := builds.bins[key]; ok {
		return p, builds.errs[key]
	}
	out := filepath.Join(builds.dir, strings.NewReplacer("+", "-", ",", "-").Replace(key))
	cmd := exec.Command("go", "build", "-tags", strings.Join(tags, ","), "-o", out, "./cmd/"+name)
	cmd.Dir = repoRoot()
	if msg, err := cmd.CombinedOutput(); err != nil {
		builds.errs[key] = fmt.Errorf("go build -tags %q ./cmd/%s: %v\n%s", strings.Join(tags, ","), name, err, firstLines(string(msg), 8))
	}
	builds.bins[key] = out
	return out, builds.errs[key]
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// server is a running `keywarden serve --insecure-noauth`.
type server struct {
	url      string
	kmipAddr string // "" when KMIP is off
	dataDir  string
	bin      string
	log      bytes.Buffer
	mu       sync.Mutex
}

// startServer builds and starts the real Keywarden server.
func startServer(t *testing.T) *server { return startServerWith(t, false) }

// startServerWith optionally turns on the server's KMIP listener.
func startServerWith(t *testing.T, withKMIP bool) *server {
	bin, err := build(t, "keywarden")
	if err != nil {
		t.Fatalf("the Keywarden server does not build: %v", err)
	}
	addr := freeAddr(t)
	s := &server{url: "http://" + addr, bin: bin, dataDir: t.TempDir()}
	if withKMIP {
		s.kmipAddr = freeAddr(t)
	}
	cmd := exec.Command(bin, "serve", "--data-dir", s.dataDir, "--rest-addr", addr, "--kmip-addr", s.kmipAddr, "--insecure-noauth")
	cmd.Stdout, cmd.Stderr = &lockedWriter{s}, &lockedWriter{s}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(25 * time.Millisecond) {
		if resp, err := http.Get(s.url + "/"); err == nil {
			resp.Body.Close()
			if s.kmipAddr == "" || listening(s.kmipAddr) { // REST may be up before KMIP
				return s
			}
		}
		select {
		case <-done:
			t.Fatalf("keywarden serve exited at start-up:\n%s", s.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("keywarden serve did not answer on %s:\n%s", s.url, s.logs())
		}
	}
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type lockedWriter struct{ s *server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.log.Write(p)
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// createSecret stores a secret for project over the Barbican API and
// returns its ref.
func (s *server) createSecret(t *testing.T, project, secretType string, payload []byte) string {
	body := map[string]any{"name": "host-e2e", "secret_type": secretType}
	switch secretType {
	case "passphrase":
		body["payload"], body["payload_content_type"] = string(payload), "text/plain"
	default:
		body["payload"] = base64.StdEncoding.EncodeToString(payload)
		body["payload_content_type"], body["payload_content_encoding"] = "application/octet-stream", "base64"
		if secretType == "symmetric" {
			body["algorithm"], body["bit_length"], body["mode"] = "aes", 8*len(payload), "xts"
		}
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/secrets", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Project-Id", project)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		SecretRef string `json:"secret_ref"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusCreated || out.SecretRef == "" {
		t.Fatalf("create %s secret: HTTP %d, ref %q\n%s", secretType, resp.StatusCode, out.SecretRef, s.logs())
	}
	return out.SecretRef
}
