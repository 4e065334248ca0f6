package kmip_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"testing"

	ovh "github.com/ovh/kmip-go"

	"github.com/keywarden/keywarden/barbican"
)

// rest is a Barbican v1 client for one identity (no-auth headers).
type rest struct {
	t       *testing.T
	base    string
	project string
	user    string
}

func (r rest) do(method, p, accept string, body any) (int, []byte) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.base+p, rd)
	req.Header.Set("X-Project-Id", r.project)
	req.Header.Set("X-User-Id", r.user)
	req.Header.Set("X-Roles", "admin")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func newREST(t *testing.T, s *server, project, user string) rest {
	h, err := barbican.New(barbican.Config{Service: s.svc, NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return rest{t: t, base: hs.URL, project: project, user: user}
}

// TestCrossProtocol: the same objects through KMIP and the Barbican REST
// API, both ways, lifecycle included.
func TestCrossProtocol(t *testing.T) {
	s := startServer(t)
	dir := s.clientFiles(t, "xproj", "dave", "admin")
	c := ovhClient(t, s, dir)
	r := newREST(t, s, "xproj", "dave")
	ctx := context.Background()

	// KMIP Register (Secret Data, Password) → REST passphrase.
	reg, err := c.Register().SecretString(ovh.SecretDataTypePassword, "kmip-made passphrase").WithName("vol-a").ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, body := r.do("GET", "/v1/secrets/"+reg.UniqueIdentifier, "application/json", nil)
	var meta map[string]any
	json.Unmarshal(body, &meta)
	if code != 200 || meta["secret_type"] != "passphrase" || meta["name"] != "vol-a" {
		t.Fatalf("REST metadata of a KMIP secret: %d %s", code, body)
	}
	code, body = r.do("GET", "/v1/secrets/"+reg.UniqueIdentifier+"/payload", "text/plain", nil)
	if code != 200 || string(body) != "kmip-made passphrase" {
		t.Fatalf("REST payload of a KMIP secret: %d %q", code, body)
	}

	// KMIP Create (AES-256) → REST symmetric secret with the same bytes.
	cr, err := c.Create().AES(256, ovh.CryptographicUsageEncrypt|ovh.CryptographicUsageDecrypt).WithName("disk-key").ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(cr.UniqueIdentifier).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	material, _ := got.Object.(*ovh.SymmetricKey).KeyMaterial()
	code, body = r.do("GET", "/v1/secrets/"+cr.UniqueIdentifier, "application/json", nil)
	meta = nil
	json.Unmarshal(body, &meta)
	if code != 200 || meta["secret_type"] != "symmetric" || meta["algorithm"] != "aes" || meta["bit_length"] != float64(256) {
		t.Fatalf("REST metadata of a KMIP key: %d %s", code, body)
	}
	code, body = r.do("GET", "/v1/secrets/"+cr.UniqueIdentifier+"/payload", "application/octet-stream", nil)
	if code != 200 || !bytes.Equal(body, material) {
		t.Fatalf("REST payload of a KMIP key: %d, %d bytes", code, len(body))
	}

	// REST store (passphrase, symmetric) → KMIP Get and Locate.
	code, body = r.do("POST", "/v1/secrets", "", map[string]any{
		"name": "rest-pass", "secret_type": "passphrase", "payload": "rest-made passphrase",
		"payload_content_type": "text/plain",
	})
	if code != 201 {
		t.Fatalf("REST store: %d %s", code, body)
	}
	passID := refID(t, body)
	key := bytes.Repeat([]byte{0xa5}, 32)
	code, body = r.do("POST", "/v1/secrets", "", map[string]any{
		"name": "rest-key", "secret_type": "symmetric", "algorithm": "aes", "bit_length": 256, "mode": "xts",
		"payload": base64.StdEncoding.EncodeToString(key), "payload_content_type": "application/octet-stream",
		"payload_content_encoding": "base64",
	})
	if code != 201 {
		t.Fatalf("REST store: %d %s", code, body)
	}
	keyID := refID(t, body)

	g, err := c.Get(passID).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := g.Object.(*ovh.SecretData).Data(); string(data) != "rest-made passphrase" {
		t.Fatalf("KMIP Get of a REST passphrase: %q", data)
	}
	g, err = c.Get(keyID).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sk := g.Object.(*ovh.SymmetricKey)
	if m, _ := sk.KeyMaterial(); !bytes.Equal(m, key) || sk.KeyBlock.CryptographicAlgorithm != ovh.CryptographicAlgorithmAES ||
		sk.KeyBlock.CryptographicLength != 256 {
		t.Fatalf("KMIP Get of a REST key: %+v", sk.KeyBlock)
	}
	loc, err := c.Locate().WithName("rest-key").ExecContext(ctx)
	if err != nil || !slices.Equal(loc.UniqueIdentifier, []string{keyID}) {
		t.Fatalf("KMIP Locate of a REST key: %v %v", loc, err)
	}
	// The REST secret's mode shows as Cryptographic Parameters over KMIP.
	attrs, err := c.GetAttributes(keyID, ovh.AttributeNameCryptographicParameters, ovh.AttributeNameState).ExecContext(ctx)
	if err != nil || len(attrs.Attribute) != 2 {
		t.Fatalf("attributes of a REST key: %+v %v", attrs, err)
	}
	for _, a := range attrs.Attribute {
		switch v := a.AttributeValue.(type) {
		case ovh.CryptographicParameters:
			if v.BlockCipherMode != ovh.BlockCipherModeXTS {
				t.Fatalf("mode %v", v.BlockCipherMode)
			}
		case ovh.State:
			if v != ovh.StateActive {
				t.Fatalf("a REST secret is %v over KMIP, want Active", v)
			}
		default:
			t.Fatalf("unexpected %T", v)
		}
	}

	// Lifecycle: destroyed over KMIP → gone over REST; deleted over REST →
	// gone over KMIP.
	if _, err := c.Destroy(cr.UniqueIdentifier).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := r.do("GET", "/v1/secrets/"+cr.UniqueIdentifier, "application/json", nil); code != 404 {
		t.Fatalf("REST sees a KMIP-destroyed secret: %d", code)
	}
	if code, body := r.do("DELETE", "/v1/secrets/"+passID, "", nil); code != 204 {
		t.Fatalf("REST delete: %d %s", code, body)
	}
	if _, err := c.Get(passID).ExecContext(ctx); err == nil || !strings.Contains(err.Error(), "ItemNotFound") {
		t.Fatalf("KMIP Get of a REST-deleted secret: %v", err)
	}

	// Another project sees none of it, through either protocol.
	other := newREST(t, s, "elsewhere", "mallory")
	if code, _ := other.do("GET", "/v1/secrets/"+reg.UniqueIdentifier+"/payload", "text/plain", nil); code != 403 && code != 404 {
		t.Fatalf("REST cross-project read: %d", code)
	}
	odir := s.clientFiles(t, "elsewhere", "mallory", "admin")
	oc := ovhClient(t, s, odir)
	if _, err := oc.Get(reg.UniqueIdentifier).ExecContext(ctx); err == nil {
		t.Fatal("KMIP cross-project Get succeeded")
	}
	if l, err := oc.Locate().WithName("vol-a").ExecContext(ctx); err != nil || len(l.UniqueIdentifier) != 0 {
		t.Fatalf("KMIP cross-project Locate: %v %v", l, err)
	}
}

func refID(t *testing.T, body []byte) string {
	t.Helper()
	var ref struct {
		SecretRef string `json:"secret_ref"`
	}
	if err := json.Unmarshal(body, &ref); err != nil || ref.SecretRef == "" {
		t.Fatalf("no secret_ref in %s", body)
	}
	return path.Base(ref.SecretRef)
}
