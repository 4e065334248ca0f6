// Package guest runs inside the test VM (tests/hostvm): a real
// `keywarden serve` on the VM's loopback and `keywarden-host` attaching,
// detaching and extending virtio disks through device-mapper. Outside the
// VM every test skips.
package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const (
	inVMEnv = "KEYWARDEN_IN_VM"
	// disksEnv lists the VM's scratch disks as "QMPID=/dev/vdX,...".
	disksEnv = "KW_DISKS"
	project  = "vm-project"
)

var env struct {
	url   string
	disks map[string]string // QMP id → device
}

func TestMain(m *testing.M) {
	if os.Getenv(inVMEnv) != "1" {
		fmt.Println("guest tests run inside the test VM only (make test-host-vm)")
		os.Exit(0)
	}
	stop, err := startServer()
	if err != nil {
		fmt.Println("keywarden serve:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// startServer runs keywarden serve on loopback with no authentication (the
// VM has no other user and no network) and waits until it answers.
func startServer() (func(), error) {
	env.disks = map[string]string{}
	for _, kv := range strings.Split(os.Getenv(disksEnv), ",") {
		id, dev, _ := strings.Cut(kv, "=")
		env.disks[id] = dev
	}
	addr := "127.0.0.1:9311"
	env.url = "http://" + addr
	dir, err := os.MkdirTemp("", "kw-data-")
	if err != nil {
		return nil, err
	}
	var logs bytes.Buffer
	cmd := exec.Command("keywarden", "serve", "--data-dir", dir, "--rest-addr", addr, "--kmip-addr", "", "--insecure-noauth", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for time.Since(start) < 60*time.Second {
		if resp, err := http.Get(env.url + "/"); err == nil {
			resp.Body.Close()
			fmt.Printf("keywarden serve answered after %.1fs\n", time.Since(start).Seconds())
			return stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return nil, fmt.Errorf("no answer on %s within 60s:\n%s", env.url, logs.String())
}

// disk is the device of QMP drive id, checked to be a block device.
func disk(t *testing.T, id string) string {
	dev := env.disks[id]
	if st, err := os.Stat(dev); err != nil || st.Mode()&os.ModeDevice == 0 {
		t.Fatalf("disk %s (%q) is not a block device: %v", id, dev, err)
	}
	return dev
}

// api sends one request as the test project and decodes a JSON answer.
func api(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, env.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Project-Id", project)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %v", method, path, resp.StatusCode, want, out)
	}
	return out
}

// order creates a disk's secret the way Cinder's and CloudStack's volume
// creation would: an order whose meta records the disk as consumer and how
// it is encrypted. It returns the secret's ref.
func order(t *testing.T, typ, volume string, enc map[string]any) string {
	t.Helper()
	meta := map[string]any{
		"name":       volume + " key",
		"consumer":   map[string]string{"service": "cinder", "resource_type": "volume", "resource_id": volume},
		"encryption": enc,
	}
	if typ == "key" {
		meta["algorithm"], meta["bit_length"], meta["mode"] = "aes", 256, "xts"
		if ks, ok := enc["key_size"].(int); ok {
			meta["bit_length"] = ks
		}
		meta["payload_content_type"] = "application/octet-stream"
	} else {
		meta["payload_content_type"] = "text/plain"
	}
	o := api(t, "POST", "/v1/orders", map[string]any{"type": typ, "meta": meta}, http.StatusAccepted)
	ref, _ := o["order_ref"].(string)
	got := api(t, "GET", strings.TrimPrefix(ref, env.url), nil, http.StatusOK)
	sref, _ := got["secret_ref"].(string)
	if sref == "" {
		t.Fatalf("order %v has no secret", got)
	}
	return sref
}

// payload fetches a secret's bytes, to build what an old host would have.
func payload(t *testing.T, ref string) []byte {
	t.Helper()
	meta := api(t, "GET", strings.TrimPrefix(ref, env.url), nil, http.StatusOK)
	ct, _ := meta["content_types"].(map[string]any)["default"].(string)
	req, _ := http.NewRequest("GET", ref+"/payload", nil)
	req.Header.Set("Accept", ct)
	req.Header.Set("X-Project-Id", project)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("payload: HTTP %d", resp.StatusCode)
	}
	return b.Bytes()
}

// result is one keywarden-host run.
type result struct {
	code           int
	stdout, stderr string
	json           map[string]any
}

// host runs keywarden-host against the VM's server with no stdin.
func host(t *testing.T, args ...string) result {
	t.Helper()
	full := append([]string{"--endpoint", env.url, "--project-id", project}, args...)
	cmd := exec.Command("keywarden-host", full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	json.Unmarshal(out.Bytes(), &r.json)
	t.Logf("keywarden-host %s → exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// must runs keywarden-host and fails unless it exits 0.
func must(t *testing.T, args ...string) map[string]any {
	t.Helper()
	r := host(t, args...)
	if r.code != 0 {
		t.Fatalf("keywarden-host %v: exit %d: %s", args, r.code, r.stderr)
	}
	return r.json
}
