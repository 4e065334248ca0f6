package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
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
