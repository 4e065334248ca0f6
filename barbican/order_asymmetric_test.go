package barbican

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
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
		{"algorithm": "RSA", "bit_length": 2048, "pass_phrase": "secret"},
	} {
		e.must(http.StatusBadRequest, "POST", "/v1/orders", map[string]any{"type": "asymmetric", "meta": bad}, hdr...)
	}
}
