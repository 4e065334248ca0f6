package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/tests/testserver"
)

// Helpers of the fault tests (Vault unreachable, data disk full).

// createStatus posts one secret and returns the status and the body (the
// ref on 201); a request that got no answer is status 0 and the error. It
// never fails the test itself, so writers in goroutines can call it.
func createStatus(base, project string, payload []byte) (int, []byte) {
	c := &http.Client{Timeout: 20 * time.Second}
	ref, err := createSecret(c, base, project, payload)
	if err == nil {
		return 201, []byte(ref)
	}
	var code int
	if n, _ := fmt.Sscanf(err.Error(), "status %d:", &code); n != 1 {
		return 0, []byte(err.Error())
	}
	_, body, _ := strings.Cut(err.Error(), ": ")
	return code, []byte(body)
}

func countSecrets(t *testing.T, base, project string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/secrets", nil)
	req.Header.Set("X-Project-Id", project)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		Total int `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list %s: %d %v", project, resp.StatusCode, err)
	}
	return l.Total
}

// startWithConfig runs serve (no auth, with KMIP) on data dir dir with a
// config file holding yaml, and returns the server and the file's path.
func startWithConfig(t *testing.T, dir, yaml string) (*testserver.Server, string) {
	t.Helper()
	cfg := filepath.Join(dir, "kw.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return testserver.Start(t, testserver.Options{NoAuth: true, KMIP: true, DataDir: dir, Args: []string{"--config", cfg}}), cfg
}

// wantRefusals fails unless every refusal in bodies ("status body" →
// count) is a 503 with a Barbican error body whose description holds want.
func wantRefusals(t *testing.T, bodies map[string]int, want string) {
	t.Helper()
	for b := range bodies {
		var eb struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		}
		code, body, _ := strings.Cut(b, " ")
		if err := json.Unmarshal([]byte(body), &eb); err != nil || code != "503" || eb.Code != 503 ||
			!strings.Contains(eb.Description, want) {
			t.Fatalf("refusal: %s", b)
		}
	}
}

// creates records the answers of creates made while a fault lasts, from
// many goroutines: the acknowledged ones (ref and payload), the refusals
// ("status body" → count) and the slowest answer.
type creates struct {
	base, project string

	mu      sync.Mutex
	acks    []acked
	bodies  map[string]int
	slowest time.Duration
}

type acked struct{ ref, payload string }

func newCreates(base, project string) *creates {
	return &creates{base: base, project: project, bodies: map[string]int{}}
}

// create posts payload p and returns the status.
func (c *creates) create(p string) int {
	start := time.Now()
	code, b := createStatus(c.base, c.project, []byte(p))
	took := time.Since(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slowest = max(c.slowest, took)
	if code == 201 {
		c.acks = append(c.acks, acked{string(b), p})
	} else {
		c.bodies[fmt.Sprintf("%d %s", code, b)]++
	}
	return code
}

// readBack fails unless every acknowledged create reads back its payload
// and the project lists exactly them.
func (c *creates) readBack(t *testing.T) {
	t.Helper()
	for _, a := range c.acks {
		if got := readText(t, c.base, c.project, a.ref); got != a.payload {
			t.Fatalf("payload of %s: %q, want %q", a.ref, got, a.payload)
		}
	}
	if n := countSecrets(t, c.base, c.project); n != len(c.acks) {
		t.Fatalf("%d secrets listed, %d acknowledged", n, len(c.acks))
	}
}
