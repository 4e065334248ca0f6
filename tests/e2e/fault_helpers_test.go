package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovh/kmip-go/kmipclient"

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

// kmipClient waits for the server's KMIP listener (it comes up after REST,
// once the CA exists), issues a client certificate of project and dials.
func kmipClient(t *testing.T, srv *testserver.Server, project string) *kmipclient.Client {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(srv.Log(), "keywarden started"); {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up line:\n%s", srv.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	certs := filepath.Join(t.TempDir(), "kmip-client")
	if out, err := testserver.Run(t, "pki", "issue-client", "--data-dir", srv.DataDir, "--project", project,
		"--user", "kim", "--roles", "admin", "--out", certs); err != nil {
		t.Fatalf("issue-client: %v\n%s", err, out)
	}
	kc, err := kmipclient.Dial(srv.KMIPAddr, kmipclient.WithRootCAFile(filepath.Join(certs, "ca.pem")),
		kmipclient.WithClientCertFiles(filepath.Join(certs, "client.pem"), filepath.Join(certs, "client-key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Close() })
	return kc
}
