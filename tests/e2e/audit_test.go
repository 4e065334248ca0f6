package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"

	"github.com/keywarden/keywarden/tests/testserver"
)

// Finding 3: every state change is audited, or it does not happen.

// auditedActions are the action names kms opens audited changes with
// (s.begin / s.beginDetail in kms/*.go), read from the source so that a
// new kind of change is not forgotten here.
func auditedActions(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("../../kms/*.go")
	re := regexp.MustCompile(`\bbegin(?:Detail)?\(ctx, \w+, "([a-z_]+)"`)
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) < 25 {
		t.Fatalf("found only %d audited actions in kms/*.go: %v", len(out), out)
	}
	return out
}

// sendAs is caller.do with a Content-Type of its own.
func (c caller) sendAs(want int, method, path, ctype, body string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-Auth-Token", c.tok)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: want %d, got %d %s", method, path, want, resp.StatusCode, b)
	}
}

// kmipClient waits for the server's KMIP listener (it comes up after REST,
// once the CA exists), issues a client certificate with `keywarden pki
// issue-client` and dials it with github.com/ovh/kmip-go.
func kmipClient(t *testing.T, srv *testserver.Server, project, user, roles string) *kmipclient.Client {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(srv.Log(), "keywarden started"); {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up line:\n%s", srv.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	dir := filepath.Join(t.TempDir(), project+"-"+user)
	if out, err := testserver.Run(t, "pki", "issue-client", "--data-dir", srv.DataDir, "--project", project,
		"--user", user, "--roles", roles, "--out", dir); err != nil {
		t.Fatalf("pki issue-client: %v\n%s", err, out)
	}
	c, err := kmipclient.Dial(srv.KMIPAddr, kmipclient.WithRootCAFile(filepath.Join(dir, "ca.pem")),
		kmipclient.WithClientCertFiles(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// verifyAudit runs `keywarden audit verify` and expects exit 0.
func verifyAudit(t *testing.T, args ...string) {
	t.Helper()
	out, err := testserver.Run(t, append([]string{"audit", "verify"}, args...)...)
	if err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("keywarden audit verify %v: %v\n%s", args, err, out)
	}
	t.Logf("audit verify: %s", strings.TrimSpace(out))
}

// Every kind of state change, over REST and KMIP, leaves an "ok" record
// naming the caller (project, user, roles, protocol, remote address), and
// the log verifies.
func TestAuditEveryStateChange(t *testing.T) {
	srv, cfg := startWith(t, "orphans:\n  min_age: 1s\n  grace: 1s\n", true)
	data := srv.DataDir
	a := as(t, srv, "proj-a", "ann", "creator")
	ops := as(t, srv, "ops", "sam", "key-manager:service-admin")

	// REST: secrets, payload, metadata, ACL, consumers, clone.
	s := a.secret("audited")
	empty := refOf(t, a.must(http.StatusCreated, "POST", "/v1/secrets", `{"name":"no payload yet"}`), "secret_ref")
	a.sendAs(http.StatusNoContent, "PUT", empty, "text/plain", "put later")
	a.must(http.StatusCreated, "PUT", s+"/metadata", `{"metadata":{"k1":"v1"}}`)
	a.must(http.StatusCreated, "POST", s+"/metadata", `{"key":"k2","value":"v2"}`)
	a.must(http.StatusOK, "PUT", s+"/metadata/k2", `{"key":"k2","value":"v3"}`)
	a.must(http.StatusNoContent, "DELETE", s+"/metadata/k2", "")
	a.must(http.StatusOK, "PUT", s+"/acl", `{"read":{"users":["gus"],"project-access":true}}`)
	a.must(http.StatusOK, "PATCH", s+"/acl", `{"read":{"project-access":false}}`)
	a.must(http.StatusOK, "DELETE", s+"/acl", "")
	a.must(http.StatusOK, "POST", s+"/consumers", consumerBody)
	a.must(http.StatusOK, "DELETE", s+"/consumers", consumerBody)
	clone := refOf(t, a.must(http.StatusCreated, "POST", s+"/clone", `{"name":"clone"}`), "secret_ref")
	// Orders.
	order := refOf(t, a.must(http.StatusAccepted, "POST", "/v1/orders",
		`{"type":"key","meta":{"algorithm":"aes","bit_length":256,"mode":"cbc"}}`), "order_ref")
	a.must(http.StatusNoContent, "DELETE", order, "")
	// Containers.
	ref := func(p string) string { return srv.URL + p }
	ctr := refOf(t, a.must(http.StatusCreated, "POST", "/v1/containers",
		fmt.Sprintf(`{"name":"c","type":"generic","secret_refs":[{"name":"a","secret_ref":%q}]}`, ref(s))), "container_ref")
	a.must(http.StatusCreated, "POST", ctr+"/secrets", fmt.Sprintf(`{"name":"b","secret_ref":%q}`, ref(clone)))
	a.must(http.StatusNoContent, "DELETE", ctr+"/secrets", fmt.Sprintf(`{"name":"b","secret_ref":%q}`, ref(clone)))
	a.must(http.StatusOK, "POST", ctr+"/consumers", `{"name":"lb","URL":"https://lb.example/1"}`)
	a.must(http.StatusOK, "DELETE", ctr+"/consumers", `{"name":"lb","URL":"https://lb.example/1"}`)
	a.must(http.StatusOK, "PUT", ctr+"/acl", `{"read":{"users":["gus"],"project-access":false}}`)
	a.must(http.StatusOK, "DELETE", ctr+"/acl", "")
	a.must(http.StatusNoContent, "DELETE", ctr, "")
	// Quotas, a delete, an orphan sweep.
	ops.must(http.StatusNoContent, "PUT", "/v1/project-quotas/proj-a", `{"project_quotas":{"secrets":50}}`)
	ops.must(http.StatusNoContent, "DELETE", "/v1/project-quotas/proj-a", "")
	a.must(http.StatusNoContent, "DELETE", clone, "")
	orphan := a.secret("orphan")
	a.autoDestroy(orphan)
	time.Sleep(1200 * time.Millisecond)
	ops.must(http.StatusOK, "DELETE", "/v1/orphans?grace=1s", "")
	a.refused(http.StatusNotFound, "GET", orphan, "")

	// KMIP: Create, Register, attributes, Activation Date, Activate, Get, Re-key, Revoke, Destroy, Create Key Pair, Re-key Key Pair.
	k := kmipClient(t, srv, "proj-k", "kim", "admin")
	ctx := context.Background()
	cr, err := k.Create().AES(256, ovh.CryptographicUsageEncrypt|ovh.CryptographicUsageDecrypt).WithName("kmip-key").ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := cr.UniqueIdentifier
	reg, err := k.Register().SecretString(ovh.SecretDataTypePassword, "kmip passphrase").WithName("kmip-secret").ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"Add Attribute", func() error { _, err := k.AddAttribute(id, "x-volume", "vol-1").ExecContext(ctx); return err }},
		{"Modify Attribute", func() error { _, err := k.ModifyAttribute(id, "x-volume", "vol-2").ExecContext(ctx); return err }},
		{"Delete Attribute", func() error { _, err := k.DeleteAttribute(id, "x-volume").ExecContext(ctx); return err }},
		{"Add Activation Date", func() error {
			_, err := k.AddAttribute(reg.UniqueIdentifier, ovh.AttributeNameActivationDate, time.Now().Add(-time.Second)).ExecContext(ctx)
			return err
		}},
		{"Activate", func() error { _, err := k.Activate(id).ExecContext(ctx); return err }},
		{"Get (the first clears Fresh)", func() error { _, err := k.Get(id).ExecContext(ctx); return err }},
		{"Create+Get whose Get exceeds the Maximum Response Size (restores Fresh)", func() error {
			return pairTooLarge(ctx, k)
		}},
		{"Encrypt with a key that has Usage Limits", func() error {
			lim, err := k.Create().AES(128, ovh.CryptographicUsageEncrypt).
				WithAttribute(ovh.AttributeNameUsageLimits, ovh.UsageLimits{UsageLimitsTotal: 1, UsageLimitsUnit: ovh.UsageLimitsUnitObject}).ExecContext(ctx)
			if err != nil {
				return err
			}
			if _, err := k.Activate(lim.UniqueIdentifier).ExecContext(ctx); err != nil {
				return err
			}
			gcm := ovh.CryptographicParameters{BlockCipherMode: ovh.BlockCipherModeGCM}
			_, err = k.Encrypt(lim.UniqueIdentifier).WithCryptographicParameters(gcm).Data([]byte("counted")).ExecContext(ctx)
			return err
		}},
		{"Re-key", func() error { _, err := k.Rekey(id).ExecContext(ctx); return err }},
		{"Revoke", func() error {
			_, err := k.Revoke(id).WithRevocationReasonCode(ovh.RevocationReasonCodeCessationOfOperation).ExecContext(ctx)
			return err
		}},
		{"Destroy", func() error { _, err := k.Destroy(id).ExecContext(ctx); return err }},
		{"Create Key Pair and Re-key Key Pair", func() error {
			kp, err := k.CreateKeyPair().ECDSA(ovh.RecommendedCurveP_256, ovh.CryptographicUsageSign, ovh.CryptographicUsageVerify).ExecContext(ctx)
			if err != nil {
				return err
			}
			_, err = k.RekeyKeyPair(kp.PrivateKeyUniqueIdentifier).ExecContext(ctx)
			return err
		}},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("KMIP %s: %v", st.name, err)
		}
	}

	// Every action kind has an ok record naming its caller.
	entries := auditEntries(t, filepath.Join(data, "audit.log"))
	byProtocol := map[string]map[string]bool{"rest": {}, "kmip": {}}
	for _, e := range entries {
		action, _ := e["action"].(string)
		if e["outcome"] != "ok" || action == "audit_file" {
			continue
		}
		proto, _ := e["protocol"].(string)
		for _, f := range []string{"project", "user", "roles", "source", "protocol", "remote"} {
			if v, _ := e[f].(string); v == "" {
				t.Errorf("%s record without %s: %v", action, f, e)
			}
		}
		if r, _ := e["remote"].(string); !strings.HasPrefix(r, "127.0.0.1:") {
			t.Errorf("%s record: remote %q is not the caller's address", action, r)
		}
		if byProtocol[proto] == nil {
			t.Errorf("%s record: protocol %q", action, proto)
			continue
		}
		byProtocol[proto][action] = true
	}
	for _, action := range auditedActions(t) {
		if !byProtocol["rest"][action] && !byProtocol["kmip"][action] {
			t.Errorf("no ok record of %q on the trail", action)
		}
	}
	for _, action := range []string{"create", "create_key_pair", "attribute_change", "activation_date_set", "activate", "fresh_clear", "fresh_restore", "usage_count", "revoke", "destroy", "rekey", "rekey_key_pair"} {
		if !byProtocol["kmip"][action] {
			t.Errorf("no ok record of KMIP %q", action)
		}
	}
	// The records name what the policy reads, before and after.
	idOf := func(p string) string { return p[strings.LastIndex(p, "/")+1:] }
	wantDetail := map[string][]string{
		"clone":         {"clone of secret " + idOf(s), "(project proj-a) into project proj-a"},
		"acl_set":       {"acl: project-access → project-access users=gus@jwt:keywarden", "acl: project-access users=gus@jwt:keywarden → private users=gus@jwt:keywarden"},
		"quota_set":     {"project proj-a", "secrets=50"},
		"orphan_delete": {"deleted (project proj-a)"},
	}
	for _, e := range entries {
		want, ok := wantDetail[e["action"].(string)]
		if !ok || e["outcome"] != "ok" {
			continue
		}
		d, _ := e["detail"].(string)
		for i, w := range want {
			if strings.Contains(d, w) {
				want[i] = ""
			}
		}
	}
	for action, want := range wantDetail {
		for _, w := range want {
			if w != "" {
				var got []string
				for _, e := range entries {
					if e["action"] == action {
						got = append(got, fmt.Sprint(e["detail"]))
					}
				}
				t.Errorf("no %s record's detail says %q: %q", action, w, got)
			}
		}
	}
	t.Logf("%d records; rest: %d kinds, kmip: %d kinds", len(entries), len(byProtocol["rest"]), len(byProtocol["kmip"]))
	verifyAudit(t, "--data-dir", data, "--config", cfg)
}

// With the audit device full, a create is refused with 503 and a Barbican
// body and the secret does not exist; reads go on; once there is room
// again, creates succeed and the log verifies.
func TestAuditDeviceFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "audit")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("mounting a tmpfs needs root: %v %s", err, out)
		}
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	srv, cfg := startWith(t, fmt.Sprintf("audit:\n  path: %s\n", filepath.Join(mnt, "audit.log")), true)
	data := srv.DataDir
	a := as(t, srv, "proj-a", "ann", "creator")
	first := a.secret("before")
	var victims []string // to be deleted while the device is full
	for i := range 12 {
		victims = append(victims, a.secret(fmt.Sprint("victim ", i)))
	}
	k := kmipClient(t, srv, "proj-k", "kim", "admin")
	ctx := context.Background()
	kmipCreate := func() error {
		_, err := k.Create().AES(128, ovh.CryptographicUsageEncrypt).ExecContext(ctx)
		return err
	}
	kmipKeys := func() int {
		t.Helper()
		loc, err := k.Locate().WithObjectType(ovh.ObjectTypeSymmetricKey).ExecContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(loc.UniqueIdentifier)
	}

	// Fill the device: whole pages, then byte by byte into the last one.
	filler, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range [][]byte{make([]byte, 4096), make([]byte, 1)} {
		for {
			if _, err = filler.Write(chunk); err != nil {
				break
			}
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("filling %s: %v", mnt, err)
		}
	}
	filler.Close()

	// The log's last page may still hold a record or a few: create until
	// the device refuses; every create it took is on the trail.
	made := 1 + len(victims)
	var status int
	var b []byte
	for range 40 {
		if status, b = a.do("POST", "/v1/secrets", `{"name":"while full","payload":"x","payload_content_type":"text/plain"}`); status != http.StatusCreated {
			break
		}
		made++
	}
	wantRefusal(t, "create with the audit device full", status, b, http.StatusServiceUnavailable)
	t.Logf("%d creates fitted in the log's last page before the 503: %s", made-1-len(victims), b)
	if n := a.total(); n != made {
		t.Errorf("%d secrets after the refused create, want %d", n, made)
	}
	a.reads(first, "before") // reads are audited best effort and go on

	// A delete: refused until there is room, and the secret stays.
	deleted := 0
	for _, v := range victims {
		if status, b = a.do("DELETE", v, ""); status != http.StatusNoContent {
			wantRefusal(t, "delete with the audit device full", status, b, http.StatusServiceUnavailable)
			a.reads(v, fmt.Sprint("victim ", deleted))
			break
		}
		deleted++
	}
	if deleted == len(victims) {
		t.Error("every delete was made with the audit device full")
	}
	made -= deleted

	// KMIP: Operation Failed, and no key.
	keys := 0
	for range 40 {
		if err = kmipCreate(); err != nil {
			break
		}
		keys++
	}
	if err == nil || !strings.Contains(err.Error(), "OperationFailed") {
		t.Errorf("KMIP Create with the audit device full: want Operation Failed, got %v", err)
	}
	if n := kmipKeys(); n != keys {
		t.Errorf("%d KMIP keys after the refused Create, want %d", n, keys)
	}

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	a.secret("after")
	if n := a.total(); n != made+1 {
		t.Errorf("%d secrets once the device has room, want %d", n, made+1)
	}
	if err := kmipCreate(); err != nil {
		t.Errorf("KMIP Create once the device has room: %v", err)
	}
	if n := kmipKeys(); n != keys+1 {
		t.Errorf("%d KMIP keys once the device has room, want %d", n, keys+1)
	}
	// One ok create record per secret that exists: the refused one left none.
	var creates int
	for _, e := range auditEntries(t, filepath.Join(mnt, "audit.log")) {
		if e["action"] == "create" && e["outcome"] == "ok" {
			creates++
		}
	}
	if creates != made+deleted+1+keys+1 {
		t.Errorf("%d ok create records for %d secrets made and %d keys", creates, made+deleted+1, keys+1)
	}
	verifyAudit(t, "--data-dir", data, "--config", cfg)
}

// pairTooLarge sends Create+Get of the ID Placeholder with a Maximum
// Response Size that holds the Create's answer but not the Get's: the key
// was created served (not Fresh), so its failed Get restores Fresh.
func pairTooLarge(ctx context.Context, k *kmipclient.Client) error {
	pair := func() []ovh.OperationPayload {
		create, err := k.Create().AES(128, ovh.CryptographicUsageEncrypt).Build()
		if err != nil {
			panic(err)
		}
		return []ovh.OperationPayload{create, &payloads.GetRequestPayload{}}
	}
	msg := ovh.NewRequestMessage(k.Version(), pair()...)
	full, err := k.Roundtrip(ctx, &msg)
	if err != nil {
		return err
	}
	limit := int32(len(ttlv.MarshalTTLV(full)) - 40)
	res, err := k.BatchOpt(ctx, pair(), func(m *ovh.RequestMessage) { m.Header.MaximumResponseSize = limit })
	if err != nil {
		return err
	}
	if len(res) != 2 || res[0].Err() != nil || res[1].ResultReason != ovh.ResultReasonResponseTooLarge {
		return fmt.Errorf("Create+Get under a %d-byte limit: %+v", limit, res)
	}
	return nil
}
