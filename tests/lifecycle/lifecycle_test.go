// Package lifecycle runs the disk-key flows of the source documents end to
// end against a real `keywarden serve`: Nova's per-disk passphrases, Cinder's
// volume from an encrypted image, CloudStack's volume passphrase, concurrent
// consumers/deletes/clones, orphan collection and the audit trail, with the
// unchanged Barbican clients (python-barbicanclient, gophercloud) at 1.0.
package lifecycle

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/orders"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/secrets"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/keywarden/keywarden/tests/testserver"
)

// client speaks to the server as one no-auth identity.
type client struct {
	t       *testing.T
	base    string
	project string
	hdr     []string // extra header pairs
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("not JSON: %q", a.body)
	}
	return m
}

func (c client) do(method, path string, body any, hdr ...string) answer {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-Project-Id", c.project)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	all := append(append([]string{}, c.hdr...), hdr...)
	for i := 0; i+1 < len(all); i += 2 {
		req.Header.Set(all[i], all[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

func (c client) must(status int, method, path string, body any, hdr ...string) answer {
	c.t.Helper()
	a := c.do(method, path, body, hdr...)
	if a.status != status {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, a.status, status, a.body)
	}
	return a
}

func consumer(service, typ, id string) map[string]string {
	return map[string]string{"service": service, "resource_type": typ, "resource_id": id}
}

// order places an order the way castellan does and returns the secret's
// path: POST, poll until ACTIVE, read secret_ref, delete the order.
func (c client) order(typ string, meta map[string]any) string {
	c.t.Helper()
	ref := c.must(http.StatusAccepted, "POST", "/v1/orders", map[string]any{"type": typ, "meta": meta}).json(c.t)["order_ref"].(string)
	var o map[string]any
	for range 50 {
		if o = c.must(http.StatusOK, "GET", ref, nil).json(c.t); o["status"] == "ACTIVE" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if o["status"] != "ACTIVE" {
		c.t.Fatalf("order never became ACTIVE: %v", o)
	}
	c.must(http.StatusNoContent, "DELETE", ref, nil)
	return strings.TrimPrefix(o["secret_ref"].(string), c.base)
}

func start(t *testing.T, dataDir string) (*testserver.Server, client) {
	t.Helper()
	srv := testserver.Start(t, testserver.Options{NoAuth: true, DataDir: dataDir})
	return srv, client{t: t, base: srv.URL, project: "p1"}
}

// Flow 1 (Nova ephemeral encryption): three disks of one instance get three
// distinct passphrases, each disk its secret's consumer; deleting the disks
// under on_last_consumer destroys all three keys.
func TestNovaEphemeralDisks(t *testing.T) {
	_, c := start(t, "")
	disks := []string{"disk", "disk.eph0", "disk.swap"}
	paths := map[string]string{}
	seen := map[string]bool{}
	for _, d := range disks {
		p := c.order("passphrase", map[string]any{
			"name":            "inst-1 " + d,
			"consumer":        consumer("compute", "instance-disk", "inst-1/"+d),
			"encryption":      map[string]any{"format": "luks"},
			"deletion_policy": "on_last_consumer",
		})
		pp := string(c.must(http.StatusOK, "GET", p+"/payload", nil, "Accept", "text/plain").body)
		if len(pp) < 32 || seen[pp] {
			t.Fatalf("disk %s: passphrase of %d bytes, reused %v", d, len(pp), seen[pp])
		}
		seen[pp], paths[d] = true, p
		lc := c.must(http.StatusOK, "GET", p+"/lifecycle", nil).json(t)
		cs := lc["consumers"].([]any)
		if len(cs) != 1 || cs[0].(map[string]any)["resource_id"] != "inst-1/"+d ||
			lc["encryption"].(map[string]any)["format"] != "luks1" {
			t.Fatalf("disk %s lifecycle %v", d, lc)
		}
	}
	for _, d := range disks {
		a := c.must(http.StatusOK, "DELETE", paths[d]+"/consumers", consumer("compute", "instance-disk", "inst-1/"+d))
		if a.header.Get("Keywarden-Secret-Destroyed") != "true" {
			t.Fatalf("disk %s: key not destroyed", d)
		}
		c.must(http.StatusNotFound, "GET", paths[d], nil)
	}
}

// Flow 2 (Cinder volume from an encrypted image), with the image key
// uploaded by python-barbicanclient at 1.0.
func TestCinderVolumeFromImage(t *testing.T) {
	_, c := start(t, "")
	key := bytes.Repeat([]byte{0x04, 0x00, 0xfe, 0x31}, 16)
	ref := barbican(t, c, "secret", "store", "--name", "image key", "--secret-type", "symmetric",
		"--algorithm", "aes", "--bit-length", "512", "--mode", "xts",
		"--payload-content-type", "application/octet-stream", "--payload-content-encoding", "base64",
		"--payload", base64.StdEncoding.EncodeToString(key), "-f", "value", "-c", "Secret href")
	img := strings.TrimPrefix(ref, c.base)
	// Glance: image properties on the key, the image as its consumer.
	c.must(http.StatusCreated, "PUT", img+"/metadata", map[string]any{"metadata": map[string]string{
		"os_encrypt_format": "luks", "os_encrypt_key_deletion_policy": "on_image_deletion", "os_decrypt_size": "1073741824"}})
	c.must(http.StatusOK, "POST", img+"/consumers", consumer("image", "image", "img-1"))
	// Cinder: clone the key for the new volume.
	cl := c.must(http.StatusCreated, "POST", img+"/clone", map[string]any{
		"consumer": consumer("volume", "volume", "vol-1"), "metadata": map[string]string{"os_encrypt_key_id": idOf(img)}}).json(t)
	vol := strings.TrimPrefix(cl["secret_ref"].(string), c.base)
	if vol == img {
		t.Fatal("clone has the source's id")
	}
	octet := []string{"Accept", "application/octet-stream"}
	if got := c.must(http.StatusOK, "GET", vol+"/payload", nil, octet...).body; !bytes.Equal(got, key) {
		t.Fatal("volume key differs from the image key")
	}
	lc := c.must(http.StatusOK, "GET", vol+"/lifecycle", nil).json(t)
	if !strings.HasSuffix(lc["cloned_from"].(string), img) || lc["consumers"].([]any)[0].(map[string]any)["resource_id"] != "vol-1" {
		t.Fatalf("volume key lifecycle %v", lc)
	}
	// Image deleted: its consumer goes, and the key with it.
	c.must(http.StatusOK, "DELETE", img+"/consumers", consumer("image", "image", "img-1"))
	out, err := barbicanRun(c, "secret", "get", ref)
	if err == nil || !strings.Contains(out, "Not Found") {
		t.Fatalf("image key still there: %v %s", err, out)
	}
	if got := c.must(http.StatusOK, "GET", vol+"/payload", nil, octet...).body; !bytes.Equal(got, key) {
		t.Fatal("volume key lost with the image")
	}
}

// Flow 3 (CloudStack): the volume's passphrase exists before first use; a
// delete while the volume uses it is refused (barbican CLI sees 409) and
// nothing is lost; once the consumer is gone the delete succeeds.
func TestCloudStackVolumePassphrase(t *testing.T) {
	_, c := start(t, "")
	p := c.order("passphrase", map[string]any{"name": "vol-42", "consumer": consumer("cloudstack", "volume", "vol-42")})
	before := c.must(http.StatusOK, "GET", p+"/payload", nil, "Accept", "text/plain").body
	out, err := barbicanRun(c, "secret", "delete", c.base+p)
	if err == nil || !strings.Contains(out, "Conflict") || !strings.Contains(out, "cloudstack/volume/vol-42") {
		t.Fatalf("delete in use: %v %s", err, out)
	}
	if after := c.must(http.StatusOK, "GET", p+"/payload", nil, "Accept", "text/plain").body; !bytes.Equal(before, after) {
		t.Fatal("refused delete changed the passphrase")
	}
	c.must(http.StatusOK, "DELETE", p+"/consumers", consumer("cloudstack", "volume", "vol-42"))
	barbican(t, c, "secret", "delete", c.base+p)
	c.must(http.StatusNotFound, "GET", p, nil)
}

// Flow 4: 50 concurrent add-consumer / delete / clone calls on one secret.
func TestConcurrentLifecycle(t *testing.T) {
	_, c := start(t, "")
	for round := range 3 {
		ref := c.must(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "race", "payload": "material",
			"payload_content_type": "text/plain"}).json(t)["secret_ref"].(string)
		p := strings.TrimPrefix(ref, c.base)
		var mu sync.Mutex
		var wg sync.WaitGroup
		adds, deletes := 0, 0
		var clones []string
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var a answer
				switch i % 3 {
				case 0:
					a = c.do("POST", p+"/consumers", consumer("compute", "instance", fmt.Sprint("vm-", i)))
				case 1:
					a = c.do("DELETE", p, nil)
				default:
					a = c.do("POST", p+"/clone", map[string]any{"consumer": consumer("volume", "volume", fmt.Sprint("v-", i))})
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case i%3 == 0 && a.status == http.StatusOK:
					adds++
				case i%3 == 1 && a.status == http.StatusNoContent:
					deletes++
				case i%3 == 2 && a.status == http.StatusCreated:
					var m map[string]any
					json.Unmarshal(a.body, &m)
					clones = append(clones, m["secret_ref"].(string))
				case a.status == http.StatusNotFound, i%3 == 1 && a.status == http.StatusConflict:
				default:
					t.Errorf("call %d: %d %s", i, a.status, a.body)
				}
			}()
		}
		wg.Wait()
		a := c.do("GET", p, nil, "OpenStack-API-Version", "key-manager 1.1")
		switch {
		case deletes > 1 || (deletes == 1 && adds > 0):
			t.Fatalf("round %d: %d deletes, %d consumers added", round, deletes, adds)
		case deletes == 1 && a.status != http.StatusNotFound:
			t.Fatalf("round %d: deleted secret answers %d", round, a.status)
		case deletes == 0 && (a.status != http.StatusOK || len(a.json(t)["consumers"].([]any)) != adds):
			t.Fatalf("round %d: %d %s, %d adds", round, a.status, a.body, adds)
		}
		for _, cl := range clones {
			if got := string(c.must(http.StatusOK, "GET", cl+"/payload", nil).body); got != "material" {
				t.Fatalf("clone holds %q", got)
			}
		}
	}
}

// Flow 5: the unchanged Barbican clients at 1.0, with consumers, clones and
// our passphrase orders present in the same project.
func TestUnchangedClients(t *testing.T) {
	_, c := start(t, "")
	used := c.order("passphrase", map[string]any{"consumer": consumer("compute", "instance-disk", "i/disk")})
	c.must(http.StatusCreated, "POST", used+"/clone", map[string]any{"consumer": consumer("volume", "volume", "v")})

	ref := barbican(t, c, "secret", "store", "--name", "cli", "--payload", "from-cli", "-f", "value", "-c", "Secret href")
	if got := barbican(t, c, "secret", "get", "--payload", ref, "-f", "value", "-c", "Payload"); got != "from-cli" {
		t.Fatalf("payload %q", got)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(barbican(t, c, "secret", "list", "-f", "json")), &list); err != nil || len(list) != 3 {
		t.Fatalf("secret list with consumers present: %v %d", err, len(list))
	}
	// python-barbicanclient refuses unknown order types and meta: it must see neither.
	orderRef := barbican(t, c, "secret", "order", "create", "--name", "ok", "--algorithm", "aes", "--bit-length", "256",
		"--mode", "cbc", "key", "-f", "value", "-c", "Order href")
	barbican(t, c, "secret", "order", "get", orderRef)
	if out := barbican(t, c, "secret", "order", "list", "-f", "value", "-c", "Type"); out != "Key" {
		t.Fatalf("order list: %q", out)
	}
	barbican(t, c, "secret", "order", "delete", orderRef)
	barbican(t, c, "secret", "delete", ref)

	// gophercloud at 1.0.
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{}}
	gc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: c.base + "/", ResourceBase: c.base + "/v1/",
		MoreHeaders: map[string]string{"X-Project-Id": "p1"}}
	ctx := context.Background()
	got, err := secrets.Get(ctx, gc, idOf(used)).Extract()
	if err != nil || got.SecretType != "passphrase" {
		t.Fatalf("gophercloud get: %+v %v", got, err)
	}
	n := 0
	err = secrets.List(gc, secrets.ListOpts{}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		s, err := secrets.ExtractSecrets(p)
		n += len(s)
		return true, err
	})
	if err != nil || n != 3 { // the disk key, its clone, the CLI's ordered key
		t.Fatalf("gophercloud list: %d %v", n, err)
	}
	o, err := orders.Create(ctx, gc, orders.CreateOpts{Type: orders.KeyOrder, Meta: orders.MetaOpts{Algorithm: "aes", BitLength: 256}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	oid := o.OrderRef[strings.LastIndex(o.OrderRef, "/")+1:]
	if og, err := orders.Get(ctx, gc, oid).Extract(); err != nil || og.Status != "ACTIVE" || og.SecretRef == "" {
		t.Fatalf("gophercloud order: %+v %v", og, err)
	}
	if err := orders.Delete(ctx, gc, oid).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}

// Orphans and the audit trail across a restart: an on_last_consumer key
// whose consumer never came is collected by the CLI (dry run first), a used
// one is kept; the audit log verifies, holds no material, and an edited
// record is caught.
func TestOrphansAndAuditTrail(t *testing.T) {
	dir := t.TempDir()
	srv, c := start(t, dir)
	orphan := c.order("key", map[string]any{"bit_length": 256, "algorithm": "aes", "deletion_policy": "on_last_consumer"})
	used := c.order("passphrase", map[string]any{"consumer": consumer("cloudstack", "volume", "v"), "deletion_policy": "on_last_consumer"})
	material := c.must(http.StatusOK, "GET", used+"/payload", nil, "Accept", "text/plain").body
	c.must(http.StatusConflict, "DELETE", used, nil)
	srv.Stop(t)

	orphans := func(args ...string) string {
		t.Helper()
		out, err := testserver.Run(t, append([]string{"secret", "orphans", "--data-dir", dir, "--config", lowOrphanFloor(t, dir), "--grace", "1ns"}, args...)...)
		if err != nil {
			t.Fatalf("orphans %v: %v\n%s", args, err, out)
		}
		return out
	}
	if out := orphans(); !strings.Contains(out, idOf(orphan)) || strings.Contains(out, idOf(used)) {
		t.Fatalf("orphans listing:\n%s", out)
	}
	if out := orphans("--collect"); !strings.Contains(out, "dry run") {
		t.Fatalf("collect without --dry-run=false:\n%s", out)
	}
	var collected []map[string]any
	if err := json.Unmarshal([]byte(orphans("--collect", "--dry-run=false", "--json")), &collected); err != nil ||
		len(collected) != 1 || collected[0]["destroyed"] != true {
		t.Fatalf("collect: %v %v", collected, err)
	}

	srv, c = start(t, dir)
	c.must(http.StatusNotFound, "GET", orphan, nil)
	c.must(http.StatusOK, "GET", used, nil)
	srv.Stop(t)

	logPath := filepath.Join(dir, "audit.log")
	out, err := testserver.Run(t, "audit", "verify", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(logPath)
	if bytes.Contains(b, material) {
		t.Fatal("the audit log holds a passphrase")
	}
	for _, want := range []string{`"action":"read_payload"`, `"action":"order_create"`, `consumers: 0 → 1`, `"outcome":"conflict"`,
		`"action":"orphan_delete","secret_id":"` + idOf(orphan)} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	// Tamper with one record: verify names it and fails.
	tampered := bytes.Replace(b, []byte(`"outcome":"conflict"`), []byte(`"outcome":"ok"`), 1)
	if err := os.WriteFile(logPath, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = testserver.Run(t, "audit", "verify", "--data-dir", dir)
	if err == nil || !strings.Contains(out, "TAMPERED") {
		t.Fatalf("tampering not detected: %v\n%s", err, out)
	}
}

// A disk secret acknowledged to the caller survives kill -9 with its
// consumer.
func TestDiskSecretSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	srv, c := start(t, dir)
	var paths []string
	for i := range 20 {
		paths = append(paths, c.order("passphrase", map[string]any{"consumer": consumer("compute", "instance-disk", fmt.Sprint("d", i))}))
	}
	srv.Kill()
	_, c = start(t, dir)
	for i, p := range paths {
		lc := c.must(http.StatusOK, "GET", p+"/lifecycle", nil).json(t)
		cs := lc["consumers"].([]any)
		if len(cs) != 1 || cs[0].(map[string]any)["resource_id"] != fmt.Sprint("d", i) {
			t.Fatalf("after kill -9: %v", lc)
		}
	}
}

func idOf(path string) string { return path[strings.LastIndex(path, "/")+1:] }

// barbicanRun runs python-barbicanclient's CLI as c's project.
func barbicanRun(c client, args ...string) (string, error) {
	c.t.Helper()
	if _, err := exec.LookPath("barbican"); err != nil {
		c.t.Fatal("barbican is not installed: run `make deps` (Debian python3-barbicanclient)")
	}
	base := []string{"--no-auth", "--endpoint", c.base, "--os-project-id", c.project}
	var stderr bytes.Buffer
	cmd := exec.Command("barbican", append(base, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)) + stderr.String(), err
}

func barbican(t *testing.T, c client, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("barbican", append([]string{"--no-auth", "--endpoint", c.base, "--os-project-id", c.project}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("barbican %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
