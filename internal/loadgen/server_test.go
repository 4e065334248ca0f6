package loadgen

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keywardenBinary builds the real server for the tests that start one.
func keywardenBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keywarden")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/keywarden/keywarden/cmd/keywarden").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestStartedServerTLSAndProfileOp: --server-tls serves the started server
// over TLS that the bench trusts (every request answered over https), and
// --server-cpuprofile-op writes a profile of that operation only (none
// for an operation that is not run).
func TestStartedServerTLSAndProfileOp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	bin := keywardenBinary(t)
	dir := t.TempDir()
	run := func(op string, tls bool) (string, []Result) {
		prof := filepath.Join(dir, op+".pprof")
		var out bytes.Buffer
		res, err := Run(context.Background(), Config{Binary: bin, Ops: []string{"get"}, Clients: 2, Duration: 300 * time.Millisecond,
			ServerTLS: tls, CPUProfile: prof, CPUProfileOp: op}, &out)
		if err != nil {
			t.Fatal(err)
		}
		return out.String() + "\n" + prof, res
	}
	out, res := run("get", true)
	if !strings.Contains(out, "target https://127.0.0.1:") {
		t.Fatalf("not over TLS: %s", out)
	}
	if len(res) != 2 || res[1].Op != "get" || res[1].N == 0 || res[1].Errs != 0 {
		t.Fatalf("results %+v", res)
	}
	prof := out[strings.LastIndexByte(out, '\n')+1:]
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Fatalf("no profile of get: %v", err)
	}
	out, _ = run("create", false)
	if !strings.Contains(out, "target http://127.0.0.1:") {
		t.Fatalf("TLS without --server-tls: %s", out)
	}
	prof = out[strings.LastIndexByte(out, '\n')+1:]
	if st, err := os.Stat(prof); err == nil && st.Size() > 0 {
		t.Fatal("a profile was written for an operation that did not run")
	}
	if _, err := Run(context.Background(), Config{Binary: bin, Ops: []string{"get"}, Clients: 1, Duration: time.Millisecond,
		ServerTLS: true, ServerConfig: filepath.Join(dir, "x.yaml")}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "--server-tls") {
		t.Fatalf("--server-tls with --server-config: %v", err)
	}
}
