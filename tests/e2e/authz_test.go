package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ovh "github.com/ovh/kmip-go"

	"github.com/keywarden/keywarden/tests/testserver"
)

// Regression tests for the findings of issue 8 against the real binary:
// each sends the request sequence that used to get through, expects
// Barbican's refusal, and checks that nothing changed.

// wantRefusal checks that a request was refused with status want and
// Barbican's error body for it.
func wantRefusal(t *testing.T, what string, status int, b []byte, want int) {
	t.Helper()
	var e struct {
		Code        int    `json:"code"`
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if status != want || json.Unmarshal(b, &e) != nil || e.Code != want || e.Title != http.StatusText(want) || e.Description == "" {
		t.Errorf("%s: want %d with a Barbican error body, got %d %s", what, want, status, b)
	}
}

// caller is one token's view of a server.
type caller struct {
	t   *testing.T
	srv *testserver.Server
	tok string
}

// as mints a development token for project, user and roles.
func as(t *testing.T, srv *testserver.Server, project, user, roles string) caller {
	t.Helper()
	return caller{t, srv, mint(t, srv, "--project", project, "--user", user, "--roles", roles)}
}

func (c caller) do(method, path, body string) (int, []byte) {
	c.t.Helper()
	return call(c.t, c.srv, c.tok, method, path, body)
}

// must sends the request and stops the test unless it gets want.
func (c caller) must(want int, method, path, body string) []byte {
	c.t.Helper()
	status, b := c.do(method, path, body)
	if status != want {
		c.t.Fatalf("%s %s: want %d, got %d %s", method, path, want, status, b)
	}
	return b
}

// refused sends the request and expects want with a Barbican error body.
func (c caller) refused(want int, method, path, body string) {
	c.t.Helper()
	status, b := c.do(method, path, body)
	wantRefusal(c.t, method+" "+path, status, b, want)
}

// refPath is the /v1/... path of an href.
func refPath(t *testing.T, ref string) string {
	t.Helper()
	i := strings.Index(ref, "/v1/")
	if i < 0 {
		t.Fatalf("not a ref: %q", ref)
	}
	return ref[i:]
}

// refOf reads the ref member named key of a creation's answer.
func refOf(t *testing.T, b []byte, key string) string {
	t.Helper()
	var m map[string]any
	json.Unmarshal(b, &m)
	ref, _ := m[key].(string)
	return refPath(t, ref)
}

// secret stores a text secret and returns its path /v1/secrets/<id>.
func (c caller) secret(name string) string {
	c.t.Helper()
	b := c.must(http.StatusCreated, "POST", "/v1/secrets",
		fmt.Sprintf(`{"name":%q,"payload":"material of %s","payload_content_type":"text/plain"}`, name, name))
	return refOf(c.t, b, "secret_ref")
}

// autoDestroy makes the secret at path an on_last_consumer one.
func (c caller) autoDestroy(path string) {
	c.t.Helper()
	c.must(http.StatusCreated, "PUT", path+"/metadata", `{"metadata":{"os_encrypt_key_deletion_policy":"on_last_consumer"}}`)
}

// reads checks that the caller reads the payload secret() stored as name.
func (c caller) reads(path, name string) {
	c.t.Helper()
	if status, b := c.do("GET", path+"/payload", ""); status != http.StatusOK || string(b) != "material of "+name {
		c.t.Errorf("%s is no longer readable by its owner: %d %s", path, status, b)
	}
}

// total is GET /v1/secrets' total for the caller's project.
func (c caller) total() int {
	c.t.Helper()
	var l struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal(c.must(http.StatusOK, "GET", "/v1/secrets", ""), &l); err != nil {
		c.t.Fatal(err)
	}
	return l.Total
}

// consumers is the number of consumers the caller sees on path.
func (c caller) consumers(path string) int {
	c.t.Helper()
	var l struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal(c.must(http.StatusOK, "GET", path+"/consumers", ""), &l); err != nil {
		c.t.Fatal(err)
	}
	return l.Total
}

const consumerBody = `{"service":"nova","resource_type":"volume","resource_id":"vol-1"}`

// startWith runs serve with a config file holding yaml and returns the
// server and the file's path.
func startWith(t *testing.T, yaml string, kmip bool) (*testserver.Server, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kw.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return testserver.Start(t, testserver.Options{DataDir: filepath.Join(dir, "data"), KMIP: kmip, Args: []string{"--config", cfg}}), cfg
}

// startWithIdP runs serve with two token issuers: an ES256 identity
// provider (issuer https://idp-x.example, whose signer it returns) and the
// development HS256 key (issuer keywarden).
func startWithIdP(t *testing.T, kmip bool) (*testserver.Server, func(project, user, roles string) string) {
	t.Helper()
	pub, sign := newIdP(t, t.TempDir(), "https://idp-x.example")
	srv, _ := startWith(t, fmt.Sprintf("auth:\n  jwt:\n    public_keys: [%s]\n    allow_hmac: true\n", pub), kmip)
	return srv, sign
}

// auditEntries reads every record of the audit log at path.
func auditEntries(t *testing.T, path string) []map[string]any {
	t.Helper()
	// With the bolt store a change's line is written just after the change
	// is answered (its record is durable in the store's WAL first): wait
	// until the file stops growing.
	for size, deadline := int64(-1), time.Now().Add(5*time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() == size {
			break
		}
		size = fi.Size()
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v in %q", path, err, sc.Text())
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Finding 1: an orphan sweep never counts a retain secret, nor one idle for
// less than orphans.min_age, and names the caller on the trail.
func TestAuthzOrphanSweepFloor(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	ops := as(t, srv, "ops", "sam", "key-manager:service-admin")
	owner := as(t, srv, "proj-a", "ann", "creator")
	kept, auto := owner.secret("kept"), owner.secret("auto")
	owner.autoDestroy(auto)

	for _, q := range []string{"grace=1ns", "grace=0s", "older_than=1ns&grace=1ns", "older_than=59m&grace=59m"} {
		ops.refused(http.StatusBadRequest, "DELETE", "/v1/orphans?"+q, "")
		ops.refused(http.StatusBadRequest, "GET", "/v1/orphans?"+q, "")
	}
	// older_than below the default grace (1h) does not lower it: the idle
	// time that counts is the longer of the two, so the query of the issue
	// and a sweep at the defaults count nothing created a moment ago.
	for _, q := range []string{"?older_than=1ns", ""} {
		var sweep struct {
			Total     int `json:"total"`
			Destroyed int `json:"destroyed"`
		}
		json.Unmarshal(ops.must(http.StatusOK, "DELETE", "/v1/orphans"+q, ""), &sweep)
		if sweep.Total != 0 || sweep.Destroyed != 0 {
			t.Errorf("DELETE /v1/orphans%s counted %d and destroyed %d young secrets", q, sweep.Total, sweep.Destroyed)
		}
	}
	// Only a service admin sweeps at all.
	owner.refused(http.StatusForbidden, "DELETE", "/v1/orphans", "")
	as(t, srv, "proj-a", "ada", "admin").refused(http.StatusForbidden, "DELETE", "/v1/orphans", "")
	owner.reads(kept, "kept")
	owner.reads(auto, "auto")
	if n := owner.total(); n != 2 {
		t.Errorf("proj-a has %d secrets after the refused sweeps, want 2", n)
	}
}

// With the floor lowered to 1s in the config, a young on_last_consumer
// orphan is destroyed while a retain secret (never an orphan) and an
// on_last_consumer secret that has a consumer stay; the audit trail names
// the sweeping operator, not the victim's project.
func TestAuthzOrphanSweepRetainSurvives(t *testing.T) {
	srv, _ := startWith(t, "orphans:\n  min_age: 1s\n  grace: 1s\n", false)
	ops := as(t, srv, "ops", "sam", "key-manager:service-admin")
	owner := as(t, srv, "proj-a", "ann", "creator")
	kept, orphan, used := owner.secret("kept"), owner.secret("orphan"), owner.secret("used")
	owner.autoDestroy(orphan)
	owner.autoDestroy(used)
	owner.must(http.StatusOK, "POST", used+"/consumers", consumerBody)
	ops.refused(http.StatusBadRequest, "DELETE", "/v1/orphans?grace=500ms", "") // below this floor too
	time.Sleep(1500 * time.Millisecond)

	var list struct {
		Orphans []struct {
			Ref string `json:"secret_ref"`
		} `json:"orphans"`
		Total     int `json:"total"`
		Destroyed int `json:"destroyed"`
	}
	// older_than over grace: every secret idle that long, retain or not, is asked for.
	json.Unmarshal(ops.must(http.StatusOK, "GET", "/v1/orphans?grace=1s&older_than=1s", ""), &list)
	if list.Total != 1 || len(list.Orphans) != 1 || refPath(t, list.Orphans[0].Ref) != orphan {
		t.Fatalf("orphans listed: %+v, want only %s", list, orphan)
	}
	json.Unmarshal(ops.must(http.StatusOK, "DELETE", "/v1/orphans?grace=1s&older_than=1s", ""), &list)
	if list.Destroyed != 1 {
		t.Fatalf("sweep destroyed %d, want 1: %+v", list.Destroyed, list)
	}
	owner.refused(http.StatusNotFound, "GET", orphan, "")
	owner.reads(kept, "kept")
	owner.reads(used, "used")

	id := orphan[strings.LastIndex(orphan, "/")+1:]
	var found bool
	for _, e := range auditEntries(t, filepath.Join(srv.DataDir, "audit.log")) {
		if e["action"] != "orphan_delete" {
			continue
		}
		if e["secret_id"] != id || e["outcome"] != "ok" || e["user"] != "sam" || e["project"] != "ops" ||
			!strings.Contains(fmt.Sprint(e["roles"]), "key-manager:service-admin") || e["protocol"] != "rest" {
			t.Errorf("orphan_delete record does not name the sweeping caller: %v", e)
		}
		found = true
	}
	if !found {
		t.Error("no orphan_delete record on the trail")
	}
}

// Finding 2: no role of project Z reaches into project A: not `service`,
// not `service,admin`, not admin, not the service admin. Consumers are
// neither listed, added nor removed, clones land nowhere, A's secrets stay.
func TestAuthzNoRoleReachesAcrossProjects(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	owner := as(t, srv, "proj-a", "ann", "creator")
	plain, auto := owner.secret("plain"), owner.secret("auto")
	owner.autoDestroy(auto)
	owner.must(http.StatusOK, "POST", auto+"/consumers", consumerBody)
	// The same requests work for the owner: the refusals below are policy,
	// not broken routes.
	owner.must(http.StatusOK, "GET", plain+"/consumers", "")
	mine := refOf(t, owner.must(http.StatusCreated, "POST", plain+"/clone", `{"project":"proj-a","name":"own clone"}`), "secret_ref")
	owner.must(http.StatusNoContent, "DELETE", mine, "")
	owner.refused(http.StatusForbidden, "POST", plain+"/clone", `{"project":"proj-b"}`)

	for _, roles := range []string{"service", "service,admin", "admin", "creator,observer", "key-manager:service-admin"} {
		z := as(t, srv, "proj-z", "zed", roles)
		t.Run(roles, func(t *testing.T) {
			z.t = t
			z.refused(http.StatusForbidden, "GET", plain+"/consumers", "")
			z.refused(http.StatusForbidden, "GET", auto+"/consumers", "")
			z.refused(http.StatusForbidden, "DELETE", auto+"/consumers", consumerBody)
			z.refused(http.StatusForbidden, "POST", plain+"/consumers", `{"service":"nova","resource_type":"volume","resource_id":"zed"}`)
			for _, to := range []string{"proj-z", "proj-b", "proj-a", ""} {
				z.refused(http.StatusForbidden, "POST", plain+"/clone", fmt.Sprintf(`{"project":%q}`, to))
			}
			z.refused(http.StatusForbidden, "GET", plain+"/payload", "")
		})
	}
	owner.t = t
	for _, p := range []string{"proj-b", "proj-z"} {
		if n := as(t, srv, p, "bob", "admin").total(); n != 0 {
			t.Errorf("%s holds %d secrets: a clone landed there", p, n)
		}
	}
	owner.reads(auto, "auto")
	if n := owner.consumers(auto); n != 1 {
		t.Errorf("%s has %d consumers, want its 1", auto, n)
	}
	if n := owner.consumers(plain); n != 0 {
		t.Errorf("%s has %d consumers: one was added from another project", plain, n)
	}
	if n := owner.total(); n != 2 {
		t.Errorf("proj-a has %d secrets, want 2", n)
	}
	owner.must(http.StatusNoContent, "DELETE", plain, "") // no consumer holds it (409 otherwise)

	// The attempts are on the trail (best effort, so give the writer a moment).
	want := map[string]bool{"clone": false, "consumer_add": false, "consumer_remove": false}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		for _, e := range auditEntries(t, filepath.Join(srv.DataDir, "audit.log")) {
			if a, _ := e["action"].(string); e["outcome"] == "forbidden" && e["project"] == "proj-z" && e["user"] == "zed" {
				if _, ok := want[a]; ok {
					want[a] = true
				}
			}
		}
		if !slices.Contains(slices.Collect(maps.Values(want)), false) || time.Now().After(deadline) {
			break
		}
	}
	for a, seen := range want {
		if !seen {
			t.Errorf("no forbidden %s record names proj-z's zed", a)
		}
	}
}

// A service admin manages quotas and orphans, and is nobody in the
// projects: it neither reads nor deletes their secrets, and no project
// admin sets quotas.
func TestAuthzServiceAdminIsNoSuperuser(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	owner := as(t, srv, "proj-a", "ann", "creator")
	path := owner.secret("a's")
	ops := as(t, srv, "ops", "sam", "key-manager:service-admin")
	for _, r := range [][2]string{{"GET", path}, {"GET", path + "/payload"}, {"GET", path + "/acl"}, {"GET", path + "/consumers"}, {"DELETE", path}} {
		if status, b := ops.do(r[0], r[1], ""); status != http.StatusForbidden && status != http.StatusNotFound {
			wantRefusal(t, "service admin "+r[0]+" "+r[1], status, b, http.StatusForbidden)
		}
	}
	admin := as(t, srv, "proj-a", "ada", "admin")
	admin.refused(http.StatusForbidden, "PUT", "/v1/project-quotas/proj-a", `{"project_quotas":{"secrets":1000}}`)
	admin.refused(http.StatusForbidden, "DELETE", "/v1/project-quotas/proj-a", "")
	admin.refused(http.StatusForbidden, "GET", "/v1/project-quotas", "")
	ops.must(http.StatusNoContent, "PUT", "/v1/project-quotas/proj-a", `{"project_quotas":{"secrets":1}}`)
	owner.refused(http.StatusForbidden, "POST", "/v1/secrets", `{"name":"over","payload":"x","payload_content_type":"text/plain"}`)
	owner.reads(path, "a's")
}

// Finding 6: a secret's ACL document is the owning project's
// admin/creator/observer's to read: not its audit role, not an ACL user of
// another project.
func TestAuthzACLDocumentReaders(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	owner := as(t, srv, "proj-a", "ann", "creator")
	path := owner.secret("shared")
	owner.must(http.StatusOK, "PUT", path+"/acl", `{"read":{"users":["gus","hal"],"project-access":true}}`)
	gus := as(t, srv, "proj-g", "gus", "observer")
	gus.reads(path, "shared") // the share works: gus may read the secret, not who else may
	gus.refused(http.StatusForbidden, "GET", path+"/acl", "")
	as(t, srv, "proj-a", "aud", "audit").refused(http.StatusForbidden, "GET", path+"/acl", "")
	as(t, srv, "proj-g", "gia", "admin").refused(http.StatusForbidden, "GET", path+"/acl", "")
	// A container's ACL document likewise.
	ctr := refOf(t, owner.must(http.StatusCreated, "POST", "/v1/containers",
		fmt.Sprintf(`{"name":"c","type":"generic","secret_refs":[{"name":"a","secret_ref":%q}]}`, srv.URL+path)), "container_ref")
	owner.must(http.StatusOK, "PUT", ctr+"/acl", `{"read":{"users":["gus","hal"],"project-access":true}}`)
	gus.must(http.StatusOK, "GET", ctr, "")
	gus.refused(http.StatusForbidden, "GET", ctr+"/acl", "")
	as(t, srv, "proj-a", "aud", "audit").refused(http.StatusForbidden, "GET", ctr+"/acl", "")
	for _, roles := range []string{"observer", "creator", "admin", "reader", "member"} {
		olly := as(t, srv, "proj-a", "olly", roles)
		for _, p := range []string{path, ctr} {
			if b := olly.must(http.StatusOK, "GET", p+"/acl", ""); !strings.Contains(string(b), "hal") {
				t.Errorf("%s of the owning project: %s ACL without its users: %s", roles, p, b)
			}
		}
	}
	owner.reads(path, "shared")
}

// Finding 7: ACL users are namespaced by identity source. With two token
// issuers, "alice" named by a caller whose token came from issuer X is
// granted only to the alice of issuer X.
func TestAuthzACLUsersNamespacedByIssuer(t *testing.T) {
	srv, sign := startWithIdP(t, false)
	es256 := func(project, user, roles string) caller { return caller{t, srv, sign(project, user, roles)} }
	owner := es256("proj-a", "ann", "creator")
	path := owner.secret("for alice")
	owner.must(http.StatusOK, "PUT", path+"/acl", `{"read":{"users":["alice"],"project-access":false}}`)

	// The same name from the development issuer (HS256, iss "keywarden").
	as(t, srv, "proj-b", "alice", "observer").refused(http.StatusForbidden, "GET", path+"/payload", "")
	as(t, srv, "proj-b", "alice", "admin").refused(http.StatusForbidden, "GET", path, "")
	es256("proj-b", "alice", "observer").reads(path, "for alice")
	es256("proj-b", "bob", "observer").refused(http.StatusForbidden, "GET", path+"/payload", "")
	owner.reads(path, "for alice")
}

// The same over KMIP: a client certificate of another project, whatever its
// roles and even when its CN is a user an ACL names, neither reads nor
// changes project A's objects, and they stay as they were.
func TestAuthzKMIPAcrossProjects(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{KMIP: true})
	ctx := context.Background()
	owner := as(t, srv, "proj-a", "ann", "creator")
	plain, shared := owner.secret("plain"), owner.secret("shared")
	owner.must(http.StatusOK, "PUT", shared+"/acl", `{"read":{"users":["alice"],"project-access":false}}`)
	as(t, srv, "proj-b", "alice", "observer").reads(shared, "shared") // the token's alice is granted

	ka := kmipClient(t, srv, "proj-a", "kay", "admin")
	cr, err := ka.Create().AES(256, ovh.CryptographicUsageEncrypt).WithName("a-key").ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := cr.UniqueIdentifier
	idOf := func(p string) string { return p[strings.LastIndex(p, "/")+1:] }

	for _, roles := range []string{"admin", "creator", "key-manager:service-admin"} {
		kz := kmipClient(t, srv, "proj-z", "alice", roles)
		for _, op := range []struct {
			name string
			run  func() error
		}{
			{"Get key", func() error { _, err := kz.Get(key).ExecContext(ctx); return err }},
			{"Get plain", func() error { _, err := kz.Get(idOf(plain)).ExecContext(ctx); return err }},
			{"Get shared", func() error { _, err := kz.Get(idOf(shared)).ExecContext(ctx); return err }},
			{"Get Attributes", func() error { _, err := kz.GetAttributes(key).ExecContext(ctx); return err }},
			{"Add Attribute", func() error { _, err := kz.AddAttribute(key, "x-volume", "z").ExecContext(ctx); return err }},
			{"Activate", func() error { _, err := kz.Activate(key).ExecContext(ctx); return err }},
			{"Revoke", func() error {
				_, err := kz.Revoke(key).WithRevocationReasonCode(ovh.RevocationReasonCodeKeyCompromise).
					WithCompromiseOccurrenceDate(time.Now()).ExecContext(ctx)
				return err
			}},
			{"Destroy key", func() error { _, err := kz.Destroy(key).ExecContext(ctx); return err }},
			{"Destroy plain", func() error { _, err := kz.Destroy(idOf(plain)).ExecContext(ctx); return err }},
		} {
			err := op.run()
			if err == nil || !strings.Contains(err.Error(), "PermissionDenied") && !strings.Contains(err.Error(), "ItemNotFound") {
				t.Errorf("proj-z %s: KMIP %s of proj-a's object: want Permission Denied or Item Not Found, got %v", roles, op.name, err)
			}
		}
		loc, err := kz.Locate().WithName("a-key").ExecContext(ctx)
		if err == nil && len(loc.UniqueIdentifier) != 0 || err != nil && !strings.Contains(err.Error(), "PermissionDenied") {
			t.Errorf("proj-z %s: Locate of proj-a's key: %v %v", roles, loc, err)
		}
	}

	attrs, err := ka.GetAttributes(key, ovh.AttributeNameState).ExecContext(ctx)
	if err != nil || len(attrs.Attribute) != 1 || attrs.Attribute[0].AttributeValue != ovh.StatePreActive {
		t.Errorf("proj-a's key after the refusals: %+v %v", attrs, err)
	}
	if attrs, err := ka.GetAttributes(key, "x-volume").ExecContext(ctx); err != nil || len(attrs.Attribute) != 0 {
		t.Errorf("an attribute was added to proj-a's key: %+v %v", attrs, err)
	}
	if _, err := ka.Get(key).ExecContext(ctx); err != nil {
		t.Errorf("proj-a cannot read its key: %v", err)
	}
	owner.reads(plain, "plain")
	owner.reads(shared, "shared")
}

// Consumers of a shared secret: an ACL user of another project may read
// the secret and register its own consumers, but neither removes the
// owner's, nor switches the secret to auto-destroy, nor destroys it by
// removing the last consumer.
func TestAuthzConsumersOfSharedSecret(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	owner := as(t, srv, "proj-a", "ann", "creator")
	shared, kept := owner.secret("shared"), owner.secret("kept")
	owner.autoDestroy(shared)
	owner.must(http.StatusOK, "POST", shared+"/consumers", consumerBody)
	for _, p := range []string{shared, kept} {
		owner.must(http.StatusOK, "PUT", p+"/acl", `{"read":{"users":["gus","hal"],"project-access":true}}`)
	}
	gus := as(t, srv, "proj-g", "gus", "admin")
	gus.reads(shared, "shared")
	const gusConsumer = `{"service":"cinder","resource_type":"volume","resource_id":"gus-vol"}`

	// Metadata is a write: not for a reader, whatever its roles elsewhere.
	for _, c := range []caller{gus, as(t, srv, "proj-a", "oscar", "observer"), as(t, srv, "proj-a", "aud", "audit")} {
		c.refused(http.StatusForbidden, "PUT", kept+"/metadata", `{"metadata":{"os_encrypt_key_deletion_policy":"on_last_consumer"}}`)
		c.refused(http.StatusForbidden, "PUT", kept+"/metadata/os_encrypt_key_deletion_policy",
			`{"key":"os_encrypt_key_deletion_policy","value":"on_last_consumer"}`)
	}
	gus.refused(http.StatusForbidden, "DELETE", shared+"/consumers", consumerBody) // proj-a's consumer
	gus.must(http.StatusOK, "POST", shared+"/consumers", gusConsumer)
	// hal, another reader, neither removes gus's consumer nor takes it
	// over by registering the same one.
	hal := as(t, srv, "proj-h", "hal", "admin")
	hal.refused(http.StatusForbidden, "DELETE", shared+"/consumers", gusConsumer)
	hal.must(http.StatusOK, "POST", shared+"/consumers", gusConsumer)
	hal.refused(http.StatusForbidden, "DELETE", shared+"/consumers", gusConsumer)
	if n := owner.consumers(shared); n != 2 {
		t.Errorf("%s has %d consumers, want proj-a's and gus's", shared, n)
	}
	owner.must(http.StatusOK, "DELETE", shared+"/consumers", consumerBody)
	// gus's is now the last consumer: removing it would destroy proj-a's key.
	gus.refused(http.StatusForbidden, "DELETE", shared+"/consumers", gusConsumer)
	owner.reads(shared, "shared")
	if n := owner.consumers(shared); n != 1 {
		t.Errorf("%s has %d consumers, want gus's 1", shared, n)
	}
	var lc struct {
		Policy string `json:"deletion_policy"`
	}
	json.Unmarshal(owner.must(http.StatusOK, "GET", kept+"/lifecycle", ""), &lc)
	if lc.Policy != "retain" {
		t.Errorf("%s: deletion policy %q after the refused metadata writes", kept, lc.Policy)
	}
	// The owner may: the refusals above are policy, not broken routes.
	owner.must(http.StatusOK, "DELETE", shared+"/consumers", gusConsumer)
	owner.refused(http.StatusNotFound, "GET", shared, "")
}

// Containers and orders of project A are not project Z's to read, change
// or delete, and A's secrets cannot be put in Z's containers.
func TestAuthzContainersAndOrdersAcrossProjects(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	owner := as(t, srv, "proj-a", "ann", "creator")
	sec := owner.secret("in a container")
	secRef := fmt.Sprintf(`{"name":"k","secret_ref":%q}`, srv.URL+sec)
	ctr := refOf(t, owner.must(http.StatusCreated, "POST", "/v1/containers",
		fmt.Sprintf(`{"name":"c","type":"generic","secret_refs":[%s]}`, secRef)), "container_ref")
	order := refOf(t, owner.must(http.StatusAccepted, "POST", "/v1/orders",
		`{"type":"key","meta":{"algorithm":"aes","bit_length":256,"mode":"cbc"}}`), "order_ref")
	const lb = `{"name":"lb","URL":"https://lb.example/z"}`

	for _, roles := range []string{"admin", "creator", "service,admin", "key-manager:service-admin"} {
		z := as(t, srv, "proj-z", "zed", roles)
		t.Run(roles, func(t *testing.T) {
			z.t = t
			for _, r := range [][3]string{
				{"GET", ctr, ""}, {"DELETE", ctr, ""}, {"GET", ctr + "/acl", ""},
				{"PUT", ctr + "/acl", `{"read":{"users":["zed"],"project-access":true}}`}, {"DELETE", ctr + "/acl", ""},
				{"GET", ctr + "/consumers", ""}, {"POST", ctr + "/consumers", lb}, {"DELETE", ctr + "/consumers", lb},
				{"POST", ctr + "/secrets", fmt.Sprintf(`{"name":"z","secret_ref":%q}`, srv.URL+sec)},
				{"DELETE", ctr + "/secrets", secRef},
				{"GET", order, ""}, {"DELETE", order, ""},
			} {
				if status, b := z.do(r[0], r[1], r[2]); status != http.StatusForbidden && status != http.StatusNotFound {
					wantRefusal(t, r[0]+" "+r[1], status, b, http.StatusForbidden)
				}
			}
			if roles == "key-manager:service-admin" {
				return // creates nothing anywhere
			}
			// A's secret in a container of Z's own.
			status, b := z.do("POST", "/v1/containers", fmt.Sprintf(`{"name":"z","type":"generic","secret_refs":[%s]}`, secRef))
			if status != http.StatusForbidden && status != http.StatusNotFound && status != http.StatusBadRequest {
				t.Errorf("proj-z %s made a container of proj-a's secret: %d %s", roles, status, b)
			}
		})
	}
	owner.t = t
	b := owner.must(http.StatusOK, "GET", ctr, "")
	if !strings.Contains(string(b), `"name":"k"`) || strings.Contains(string(b), `"name":"z"`) {
		t.Errorf("proj-a's container changed: %s", b)
	}
	if n := owner.consumers(ctr); n != 0 {
		t.Errorf("proj-a's container has %d consumers", n)
	}
	owner.must(http.StatusOK, "GET", order, "")
	owner.must(http.StatusOK, "GET", ctr+"/acl", "")
	if b := owner.must(http.StatusOK, "GET", ctr+"/acl", ""); strings.Contains(string(b), "zed") {
		t.Errorf("proj-a's container ACL names zed: %s", b)
	}
	owner.reads(sec, "in a container")
	var l struct {
		Total int `json:"total"`
	}
	json.Unmarshal(as(t, srv, "proj-z", "zed", "admin").must(http.StatusOK, "GET", "/v1/containers", ""), &l)
	if l.Total != 0 {
		t.Errorf("proj-z holds %d containers", l.Total)
	}
}

// The server's own schedule follows the same rules: with
// orphans.collect_every it destroys a young on_last_consumer orphan once
// min_age has passed, never a retain secret, and audits as keywarden:orphans.
func TestAuthzOrphanScheduleSparesRetain(t *testing.T) {
	srv, _ := startWith(t, "orphans:\n  collect_every: 300ms\n  min_age: 1s\n  grace: 1s\n", false)
	owner := as(t, srv, "proj-a", "ann", "creator")
	kept, orphan := owner.secret("kept"), owner.secret("orphan")
	owner.autoDestroy(orphan)
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, _ := owner.do("GET", orphan, "")
		if status == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule did not collect %s: %d\n%s", orphan, status, srv.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // a few more rounds
	owner.reads(kept, "kept")
	var found bool
	for _, e := range auditEntries(t, filepath.Join(srv.DataDir, "audit.log")) {
		if e["action"] == "orphan_delete" && e["outcome"] == "ok" {
			found = true
			if e["user"] != "keywarden:orphans" || !strings.HasSuffix(orphan, fmt.Sprint(e["secret_id"])) {
				t.Errorf("scheduled orphan_delete: %v", e)
			}
		}
	}
	if !found {
		t.Error("no orphan_delete record of the schedule")
	}
}

// Ownership is namespaced like ACL users: a private secret's creator "ann"
// of one identity source is not the "ann" of another source in the same
// project (another token issuer, a KMIP client certificate), who is only a
// fellow project member.
func TestAuthzOwnerNamespacedBySource(t *testing.T) {
	srv, sign := startWithIdP(t, true)
	owner := as(t, srv, "proj-a", "ann", "creator")
	path := owner.secret("private")
	owner.must(http.StatusOK, "PUT", path+"/acl", `{"read":{"project-access":false}}`)
	owner.reads(path, "private")

	other := caller{t, srv, sign("proj-a", "ann", "creator")} // ann of issuer X
	other.refused(http.StatusForbidden, "GET", path+"/payload", "")
	other.refused(http.StatusForbidden, "PUT", path+"/acl", `{"read":{"project-access":true}}`)
	other.refused(http.StatusForbidden, "DELETE", path, "")

	id := path[strings.LastIndex(path, "/")+1:]
	ctx := context.Background()
	for _, user := range []string{"ann", "bob"} { // bob: the control, a plain member
		k := kmipClient(t, srv, "proj-a", user, "creator")
		_, err := k.Get(id).ExecContext(ctx)
		if err == nil || !strings.Contains(err.Error(), "PermissionDenied") && !strings.Contains(err.Error(), "ItemNotFound") {
			t.Errorf("KMIP certificate of proj-a %s: Get of ann's private secret: %v", user, err)
		}
		if _, err := k.Destroy(id).ExecContext(ctx); err == nil {
			t.Errorf("KMIP certificate of proj-a %s destroyed ann's private secret", user)
		}
	}
	owner.reads(path, "private")
}
