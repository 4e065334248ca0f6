package barbican

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/policytest"
	"github.com/keywarden/keywarden/kms/token"
)

// The authorization matrix of kms/policytest through the REST handler,
// with real tokens: each caller is a JWT whose iss is its identity source,
// so the ACL user of another source is a token for "eve" from another
// issuer.

type restObjects struct {
	secret, plain, empty, last, container, order string
}

func matrixToken(t *testing.T, c kms.Identity) string {
	t.Helper()
	tok, err := token.MintFor(hmacSecret, c, time.Hour, c.Source, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *env) makeRESTObjects(owner string, s policytest.Situation) restObjects {
	t := e.t
	as := []string{"X-Auth-Token", owner}
	acl := map[string]any{"read": map[string]any{"users": []string{policytest.ACLUser}, "project-access": s == policytest.Public}}
	secret := func(body map[string]any) string {
		id := idOfRef(t, e.must(http.StatusCreated, "POST", "/v1/secrets", body, as...).JSON(t)["secret_ref"].(string))
		e.must(http.StatusOK, "PUT", "/v1/secrets/"+id+"/acl", acl, as...)
		return id
	}
	text := map[string]any{"name": "m", "payload": "x", "payload_content_type": "text/plain"}
	var o restObjects
	o.secret, o.plain, o.empty, o.last = secret(text), secret(text), secret(map[string]any{"name": "empty"}), secret(text)
	for _, r := range []string{"a", "b"} {
		e.must(http.StatusOK, "POST", "/v1/secrets/"+o.secret+"/consumers", consumer("volume", "volume", r), as...)
	}
	e.must(http.StatusCreated, "PUT", "/v1/secrets/"+o.last+"/metadata",
		map[string]any{"metadata": map[string]any{"os_encrypt_key_deletion_policy": "on_image_deletion"}}, as...)
	e.must(http.StatusOK, "POST", "/v1/secrets/"+o.last+"/consumers", consumer("volume", "volume", "a"), as...)
	c := e.must(http.StatusCreated, "POST", "/v1/containers", map[string]any{"type": "generic", "name": "c",
		"secret_refs": []map[string]any{{"name": "k", "secret_ref": e.url + "/v1/secrets/" + o.secret}}}, as...)
	o.container = lastSegment(c.JSON(t)["container_ref"].(string))
	e.must(http.StatusOK, "PUT", "/v1/containers/"+o.container+"/acl", acl, as...)
	e.must(http.StatusOK, "POST", "/v1/containers/"+o.container+"/consumers", map[string]any{"name": "lb", "URL": "u"}, as...)
	ord := e.must(http.StatusAccepted, "POST", "/v1/orders", map[string]any{"type": "key",
		"meta": map[string]any{"algorithm": "aes", "bit_length": 256, "mode": "cbc"}}, as...)
	o.order = lastSegment(ord.JSON(t)["order_ref"].(string))
	return o
}

// restOp is one request that asks a rule: method, path and body.
type restOp func(e *env, o restObjects) (method, path string, body any)

var restOps = map[kms.Rule]restOp{
	kms.SecretCreate: func(*env, restObjects) (string, string, any) {
		return "POST", "/v1/secrets", map[string]any{"payload": "y", "payload_content_type": "text/plain"}
	},
	kms.SecretList: get("/v1/secrets"),
	kms.SecretRead: func(_ *env, o restObjects) (string, string, any) { return "GET", "/v1/secrets/" + o.secret, nil },
	kms.SecretDecrypt: func(_ *env, o restObjects) (string, string, any) {
		return "GET", "/v1/secrets/" + o.secret + "/payload", nil
	},
	kms.SecretUpdate: func(_ *env, o restObjects) (string, string, any) { return "PUT", "/v1/secrets/" + o.empty, "z" },
	kms.SecretDelete: func(_ *env, o restObjects) (string, string, any) { return "DELETE", "/v1/secrets/" + o.plain, nil },
	kms.SecretClone: func(_ *env, o restObjects) (string, string, any) {
		return "POST", "/v1/secrets/" + o.secret + "/clone", map[string]any{}
	},
	kms.SecretACLRead: func(_ *env, o restObjects) (string, string, any) {
		return "GET", "/v1/secrets/" + o.secret + "/acl", nil
	},
	kms.SecretACLChange: func(_ *env, o restObjects) (string, string, any) {
		return "PATCH", "/v1/secrets/" + o.secret + "/acl", map[string]any{"read": map[string]any{"users": []string{policytest.ACLUser, "x"}}}
	},
	kms.SecretACLDelete: func(_ *env, o restObjects) (string, string, any) {
		return "DELETE", "/v1/secrets/" + o.secret + "/acl", nil
	},
	kms.SecretMetaRead: func(_ *env, o restObjects) (string, string, any) {
		return "GET", "/v1/secrets/" + o.secret + "/metadata", nil
	},
	kms.SecretMetaWrite: func(_ *env, o restObjects) (string, string, any) {
		return "POST", "/v1/secrets/" + o.secret + "/metadata", map[string]any{"key": "k", "value": "v"}
	},
	kms.ConsumerRead: func(_ *env, o restObjects) (string, string, any) {
		return "GET", "/v1/secrets/" + o.secret + "/consumers", nil
	},
	kms.ConsumerAdd: func(_ *env, o restObjects) (string, string, any) {
		return "POST", "/v1/secrets/" + o.secret + "/consumers", consumer("image", "image", "c")
	},
	kms.ConsumerRemove: func(_ *env, o restObjects) (string, string, any) {
		return "DELETE", "/v1/secrets/" + o.secret + "/consumers", consumer("volume", "volume", "a")
	},
	kms.ConsumerDestroy: func(_ *env, o restObjects) (string, string, any) {
		return "DELETE", "/v1/secrets/" + o.last + "/consumers", consumer("volume", "volume", "a")
	},
	kms.ContainerCreate: func(*env, restObjects) (string, string, any) {
		return "POST", "/v1/containers", map[string]any{"type": "generic", "name": "n"}
	},
	kms.ContainerList: get("/v1/containers"),
	kms.ContainerRead: func(_ *env, o restObjects) (string, string, any) { return "GET", "/v1/containers/" + o.container, nil },
	kms.ContainerDelete: func(_ *env, o restObjects) (string, string, any) {
		return "DELETE", "/v1/containers/" + o.container, nil
	},
	kms.ContainerSecretChange: func(e *env, o restObjects) (string, string, any) {
		return "DELETE", "/v1/containers/" + o.container + "/secrets", map[string]any{"name": "k", "secret_ref": e.url + "/v1/secrets/" + o.secret}
	},
	kms.ContainerConsumerRead: func(_ *env, o restObjects) (string, string, any) {
		return "GET", "/v1/containers/" + o.container + "/consumers", nil
	},
	kms.ContainerConsumerUse: func(_ *env, o restObjects) (string, string, any) {
		return "POST", "/v1/containers/" + o.container + "/consumers", map[string]any{"name": "x", "URL": "y"}
	},
	kms.ContainerACLRead: func(_ *env, o restObjects) (string, string, any) {
		return "GET", "/v1/containers/" + o.container + "/acl", nil
	},
	kms.ContainerACLChange: func(_ *env, o restObjects) (string, string, any) {
		return "PATCH", "/v1/containers/" + o.container + "/acl", map[string]any{"read": map[string]any{"project-access": true}}
	},
	kms.OrderCreate: func(*env, restObjects) (string, string, any) {
		return "POST", "/v1/orders", map[string]any{"type": "key", "meta": map[string]any{"algorithm": "aes", "bit_length": 256, "mode": "cbc"}}
	},
	kms.OrderList:   get("/v1/orders"),
	kms.OrderRead:   func(_ *env, o restObjects) (string, string, any) { return "GET", "/v1/orders/" + o.order, nil },
	kms.OrderDelete: func(_ *env, o restObjects) (string, string, any) { return "DELETE", "/v1/orders/" + o.order, nil },
	kms.QuotaRead:   get("/v1/quotas"),
	kms.ProjectQuotaAdmin: func(*env, restObjects) (string, string, any) {
		return "PUT", "/v1/project-quotas/" + policytest.Project, map[string]any{"project_quotas": map[string]any{"secrets": 100}}
	},
	kms.OrphanList:    get("/v1/orphans"),
	kms.OrphanDestroy: func(*env, restObjects) (string, string, any) { return "DELETE", "/v1/orphans", nil },
}

func get(path string) restOp {
	return func(*env, restObjects) (string, string, any) { return "GET", path, nil }
}

// TestPolicyMatrixREST: every rule × caller kind × situation over HTTP. An
// allowed request gets a 2xx, a refused one 403 with a Barbican body, and
// the objects stay as the owner saw them.
func TestPolicyMatrixREST(t *testing.T) {
	cases := 0
	for _, rule := range policytest.Rules() {
		op, ok := restOps[rule]
		if !ok && slices.Contains(policytest.KMIPOnly, rule) {
			continue
		}
		if !ok {
			t.Fatalf("no request for rule %s", rule)
		}
		for _, sit := range []policytest.Situation{policytest.Public, policytest.Private} {
			e := newEnv(t, withAuth())
			owner := matrixToken(t, policytest.Callers[1].Identity)
			for _, c := range policytest.Callers {
				o := e.makeRESTObjects(owner, sit)
				before := e.restSnapshot(owner, o)
				method, path, body := op(e, o)
				h := []string{"X-Auth-Token", matrixToken(t, c.Identity), "Accept", "*/*"}
				if s, ok := body.(string); ok {
					h = append(h, "Content-Type", "text/plain")
					body = s
				}
				r := e.do(method, path, body, h...)
				cases++
				want := policytest.Allowed(rule, sit, c.Name)
				switch {
				case want && (r.Status < 200 || r.Status > 299):
					t.Errorf("%s %s by %s: %s %s → %d %s, want 2xx", rule, sit, c.Name, method, path, r.Status, r.Body)
				case !want && r.Status != http.StatusForbidden:
					t.Errorf("%s %s by %s: %s %s → %d %s, want 403", rule, sit, c.Name, method, path, r.Status, r.Body)
				case !want:
					if m := r.JSON(t); m["code"] != 403.0 || m["title"] != "Forbidden" {
						t.Errorf("%s %s by %s: not a Barbican error body: %s", rule, sit, c.Name, r.Body)
					}
					if after := e.restSnapshot(owner, o); after != before {
						t.Errorf("%s %s by %s: refused, but the objects changed:\n%s\n%s", rule, sit, c.Name, before, after)
					}
				}
			}
		}
	}
	t.Logf("%d cases over HTTP", cases)
}

// restSnapshot is what the owner sees of the objects: their metadata,
// ACLs, consumers and the project's lists.
func (e *env) restSnapshot(owner string, o restObjects) string {
	as := []string{"X-Auth-Token", owner, "OpenStack-API-Version", "key-manager 1.1"}
	var b strings.Builder
	for _, p := range []string{
		"/v1/secrets/" + o.secret, "/v1/secrets/" + o.secret + "/acl", "/v1/secrets/" + o.secret + "/metadata",
		"/v1/secrets/" + o.plain, "/v1/secrets/" + o.empty, "/v1/secrets/" + o.last,
		"/v1/containers/" + o.container, "/v1/containers/" + o.container + "/acl", "/v1/orders/" + o.order,
		"/v1/secrets?limit=100", "/v1/containers?limit=100", "/v1/quotas",
	} {
		r := e.do("GET", p, nil, as...)
		fmt.Fprintf(&b, "%s %d %s\n", p, r.Status, r.Body)
	}
	return b.String()
}

func lastSegment(ref string) string { return ref[strings.LastIndexByte(ref, '/')+1:] }
