package barbican

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// castellan's create_key_pair: an asymmetric order, then its rsa container,
// then the two secrets.
func TestAsymmetricOrder(t *testing.T) {
	e := newEnv(t)
	hdr := []string{"X-Roles", "creator", "X-User-Id", "nova"}
	r := e.must(http.StatusAccepted, "POST", "/v1/orders", map[string]any{"type": "asymmetric", "meta": map[string]any{
		"name": "pair", "algorithm": "RSA", "bit_length": 2048}}, hdr...)
	ref, _ := r.JSON(t)["order_ref"].(string)
	m := e.must(http.StatusOK, "GET", strings.TrimPrefix(ref, e.url), nil, hdr...).JSON(t)
	cref, _ := m["container_ref"].(string)
	if m["status"] != "ACTIVE" || m["type"] != "asymmetric" || cref == "" || m["secret_ref"] != nil {
		t.Fatalf("order %v", m)
	}
	c := e.must(http.StatusOK, "GET", strings.TrimPrefix(cref, e.url), nil, hdr...).JSON(t)
	if c["type"] != "rsa" || c["name"] != "pair" {
		t.Fatalf("container %v", c)
	}
	refs := map[string]string{}
	for _, x := range c["secret_refs"].([]any) {
		sr := x.(map[string]any)
		refs[sr["name"].(string)] = strings.TrimPrefix(sr["secret_ref"].(string), e.url)
	}
	priv := e.must(http.StatusOK, "GET", refs["private_key"]+"/payload", nil, append(hdr, "Accept", "application/octet-stream")...)
	pub := e.must(http.StatusOK, "GET", refs["public_key"]+"/payload", nil, append(hdr, "Accept", "application/octet-stream")...)
	pb, _ := pem.Decode(priv.Body)
	ub, _ := pem.Decode(pub.Body)
	if pb == nil || ub == nil {
		t.Fatalf("payloads are not PEM: %q %q", priv.Body, pub.Body)
	}
	k, err := x509.ParsePKCS8PrivateKey(pb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	u, err := x509.ParsePKIXPublicKey(ub.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !k.(*rsa.PrivateKey).PublicKey.Equal(u) || k.(*rsa.PrivateKey).N.BitLen() != 2048 {
		t.Fatal("the public key is not the private key's, or not 2048 bits")
	}
	for s, typ := range map[string]string{"private_key": "private", "public_key": "public"} {
		m := e.must(http.StatusOK, "GET", refs[s], nil, hdr...).JSON(t)
		if m["secret_type"] != typ || m["algorithm"] != "rsa" || m["bit_length"] != 2048.0 {
			t.Errorf("%s: %v", s, m)
		}
	}
	for _, bad := range []map[string]any{
		{"algorithm": "RSA", "bit_length": 1024},
		{"algorithm": "DSA", "bit_length": 2048},
		{"algorithm": "RSA", "bit_length": 2048, "pass_phrase": strings.Repeat("x", 1025)},
	} {
		e.must(http.StatusBadRequest, "POST", "/v1/orders", map[string]any{"type": "asymmetric", "meta": bad}, hdr...)
	}
}

// An asymmetric order with a pass_phrase, as Barbican serves it: the rsa
// container gets private_key_passphrase; the private key's REST payload is
// an "ENCRYPTED PRIVATE KEY" PEM (PKCS#8, PBES2) that Go and OpenSSL open
// with the passphrase to the public key's pair; over KMIP (kms.GetPayload)
// the key is the stored PKCS#8. The passphrase is in no order record.
func TestAsymmetricOrderPassphrase(t *testing.T) {
	e := newEnv(t)
	hdr := []string{"X-Roles", "creator", "X-User-Id", "nova"}
	const pass = "correct horse battery staple"
	r := e.must(http.StatusAccepted, "POST", "/v1/orders", map[string]any{"type": "asymmetric", "meta": map[string]any{
		"name": "protected", "algorithm": "RSA", "bit_length": 2048, "pass_phrase": pass}}, hdr...)
	ref, _ := r.JSON(t)["order_ref"].(string)
	o := e.must(http.StatusOK, "GET", strings.TrimPrefix(ref, e.url), nil, hdr...)
	if strings.Contains(string(o.Body), pass) {
		t.Fatalf("the order shows the pass_phrase: %s", o.Body)
	}
	cref, _ := o.JSON(t)["container_ref"].(string)
	c := e.must(http.StatusOK, "GET", strings.TrimPrefix(cref, e.url), nil, hdr...).JSON(t)
	refs := map[string]string{}
	for _, x := range c["secret_refs"].([]any) {
		sr := x.(map[string]any)
		refs[sr["name"].(string)] = strings.TrimPrefix(sr["secret_ref"].(string), e.url)
	}
	if len(refs) != 3 || refs["private_key_passphrase"] == "" {
		t.Fatalf("container secrets %v", refs)
	}
	bin := append(hdr, "Accept", "application/octet-stream")
	priv := e.must(http.StatusOK, "GET", refs["private_key"]+"/payload", nil, bin...).Body
	pub := e.must(http.StatusOK, "GET", refs["public_key"]+"/payload", nil, bin...).Body
	pp := e.must(http.StatusOK, "GET", refs["private_key_passphrase"]+"/payload", nil, append(hdr, "Accept", "text/plain")...).Body
	if string(pp) != pass {
		t.Fatalf("passphrase payload %q", pp)
	}
	if blk, _ := pem.Decode(priv); blk == nil || blk.Type != "ENCRYPTED PRIVATE KEY" {
		t.Fatalf("private key payload: %.60q", priv)
	}
	ub, _ := pem.Decode(pub)
	u, err := x509.ParsePKIXPublicKey(ub.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.DecryptPKCS8PEM(priv, []byte(pass))
	if err != nil || !k.(*rsa.PrivateKey).PublicKey.Equal(u) {
		t.Fatalf("decrypted with the passphrase: %v", err)
	}
	if _, err := crypto.DecryptPKCS8PEM(priv, []byte("wrong")); err == nil {
		t.Fatal("a wrong passphrase opened the key")
	}
	// OpenSSL reads it too (PBES2, PBKDF2-SHA256, AES-256-CBC); make test
	// installs it (tests/ensure-deps.sh), so only a short run goes without.
	path, err := exec.LookPath("openssl")
	if err != nil && !testing.Short() {
		t.Fatalf("openssl is needed for this check (apt-get install openssl): %v", err)
	}
	if err == nil {
		dir := t.TempDir()
		in := filepath.Join(dir, "k.pem")
		os.WriteFile(in, priv, 0o600)
		cmd := exec.Command(path, "pkcs8", "-in", in, "-passin", "env:KW_PASS")
		cmd.Env = append(os.Environ(), "KW_PASS="+pass)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl pkcs8: %v", err)
		}
		blk, _ := pem.Decode(out)
		if blk == nil {
			t.Fatalf("openssl: %s", out)
		}
		ok, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil || !ok.(*rsa.PrivateKey).PublicKey.Equal(u) {
			t.Fatalf("openssl's key: %v", err)
		}
	}
	// KMIP reads the stored key: plain PKCS#8, the same key.
	id := refs["private_key"][strings.LastIndex(refs["private_key"], "/")+1:]
	who := kms.Identity{Project: "p1", User: "nova", Roles: []string{"creator"}}
	_, plain, err := e.svc.GetPayload(context.Background(), who, id)
	if err != nil {
		t.Fatal(err)
	}
	if blk, _ := pem.Decode(plain); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatalf("stored key %.40q", plain)
	} else if sk, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil || !sk.(*rsa.PrivateKey).Equal(k) {
		t.Fatalf("stored key is not the served one: %v", err)
	}
	// The pass_phrase is in no stored record in the clear.
	e.store.Scan(context.Background(), "", "", func(key string, value []byte) bool {
		if bytes.Contains(value, []byte(pass)) {
			t.Errorf("%s holds the pass_phrase in the clear", key)
		}
		return true
	})
	// Its passphrase deleted, the key is refused over REST, not served plain.
	e.must(http.StatusNoContent, "DELETE", refs["private_key_passphrase"], nil, hdr...)
	e.must(http.StatusConflict, "GET", refs["private_key"]+"/payload", nil, bin...)
	// pass_phrase belongs to asymmetric orders.
	e.must(http.StatusBadRequest, "POST", "/v1/orders", map[string]any{"type": "key", "meta": map[string]any{
		"algorithm": "aes", "bit_length": 256, "pass_phrase": pass}}, hdr...)
}
