package barbican

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/orders"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/secrets"

	"github.com/keywarden/keywarden/kms"
)

var (
	barbicanOrderKeys = []string{"created", "creator_id", "meta", "order_ref", "secret_ref", "status",
		"sub_status", "sub_status_message", "type", "updated"}
	barbicanMetaKeys = []string{"algorithm", "bit_length", "expiration", "mode", "name", "payload_content_type"}
)

func idOfOrderRef(t *testing.T, ref string) string {
	t.Helper()
	i := strings.LastIndex(ref, "/v1/orders/")
	if i < 0 {
		t.Fatalf("not an order ref: %q", ref)
	}
	return ref[i+len("/v1/orders/"):]
}

// castellan: order, poll until ACTIVE, read secret_ref, delete the order.
func TestKeyOrderCastellanFlow(t *testing.T) {
	e := newEnv(t)
	creatorHdr := []string{"X-Roles", "creator", "X-User-Id", "nova"}
	r := e.must(http.StatusAccepted, "POST", "/v1/orders", map[string]any{"type": "key", "meta": map[string]any{
		"name": "vol-key", "algorithm": "AES", "bit_length": 256, "mode": "cbc",
		"payload_content_type": "application/octet-stream"}}, creatorHdr...)
	ref, _ := r.JSON(t)["order_ref"].(string)
	if r.Header.Get("Location") != ref || !strings.HasPrefix(ref, e.url+"/v1/orders/") {
		t.Fatalf("order_ref %q Location %q", ref, r.Header.Get("Location"))
	}
	path := strings.TrimPrefix(ref, e.url)
	m := e.must(http.StatusOK, "GET", path, nil, creatorHdr...).JSON(t)
	if got := keys(m); !slices.Equal(got, barbicanOrderKeys) {
		t.Fatalf("order members %v", got)
	}
	meta := m["meta"].(map[string]any)
	if got := keys(meta); !slices.Equal(got, barbicanMetaKeys) {
		t.Fatalf("meta members %v", got)
	}
	if m["status"] != "ACTIVE" || m["type"] != "key" || meta["algorithm"] != "AES" || meta["bit_length"] != 256.0 ||
		meta["expiration"] != nil || m["creator_id"] != "nova" {
		t.Fatalf("order %v", m)
	}
	secretRef := m["secret_ref"].(string)
	key := e.must(http.StatusOK, "GET", strings.TrimPrefix(secretRef, e.url)+"/payload", nil,
		append(creatorHdr, "Accept", "application/octet-stream")...)
	if len(key.Body) != 32 {
		t.Fatalf("key of %d bytes", len(key.Body))
	}
	lst := e.must(http.StatusOK, "GET", "/v1/orders", nil).JSON(t)
	if lst["total"] != 1.0 {
		t.Fatalf("list %v", lst)
	}
	// Only the creator (or an admin) deletes the order; the secret stays.
	checkError(t, e.do("DELETE", path, nil, "X-Roles", "creator", "X-User-Id", "someone-else"), http.StatusForbidden)
	e.must(http.StatusNoContent, "DELETE", path, nil, creatorHdr...)
	checkError(t, e.do("GET", path, nil), http.StatusNotFound)
	e.must(http.StatusOK, "GET", strings.TrimPrefix(secretRef, e.url), nil)
}

func TestOrderRefusals(t *testing.T) {
	e := newEnv(t)
	for _, body := range []any{
		map[string]any{"meta": map[string]any{"bit_length": 256}},
		map[string]any{"type": "key"},
		map[string]any{"type": "key", "meta": map[string]any{"algorithm": "aes"}},
		map[string]any{"type": "key", "meta": map[string]any{"bit_length": 100}},
		map[string]any{"type": "key", "meta": map[string]any{"bit_length": 256, "payload_content_type": "text/plain"}},
		map[string]any{"type": "key", "meta": map[string]any{"bit_length": 256, "expiration": "2001-01-01T00:00:00"}},
		map[string]any{"type": "asymmetric", "meta": map[string]any{"bit_length": 1024, "algorithm": "rsa"}},
		map[string]any{"type": "certificate", "meta": map[string]any{}},
		map[string]any{"type": "passphrase", "meta": map[string]any{"consumer": map[string]any{"service": "x"}}},
		map[string]any{"type": "passphrase", "meta": map[string]any{"deletion_policy": "sometimes"}},
	} {
		checkError(t, e.do("POST", "/v1/orders", body), http.StatusBadRequest)
	}
	checkError(t, e.do("POST", "/v1/orders", map[string]any{"type": "key", "meta": map[string]any{"bit_length": 256}},
		"X-Roles", "observer"), http.StatusForbidden)
	checkError(t, e.do("GET", "/v1/orders/nope", nil), http.StatusNotFound)
	if lst := e.must(http.StatusOK, "GET", "/v1/secrets", nil).JSON(t); lst["total"] != 0.0 {
		t.Fatalf("refused orders left secrets: %v", lst)
	}
}

// Our passphrase order with the disk as consumer (CloudStack, Nova): the
// extension shows only on the lifecycle path and ?type=passphrase.
func TestPassphraseOrderForDisk(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusAccepted, "POST", "/v1/orders", map[string]any{"type": "passphrase", "meta": map[string]any{
		"name": "vol-42 passphrase", "payload_content_type": "text/plain",
		"consumer":        consumer("cloudstack", "volume", "vol-42"),
		"encryption":      map[string]any{"format": "luks", "cipher": "aes-xts-plain64", "key_size": 512},
		"deletion_policy": "on_last_consumer",
	}})
	path := strings.TrimPrefix(r.JSON(t)["order_ref"].(string), e.url)
	m := e.must(http.StatusOK, "GET", path, nil).JSON(t)
	if got := keys(m["meta"].(map[string]any)); !slices.Equal(got, barbicanMetaKeys) || m["type"] != "passphrase" {
		t.Fatalf("order %v", m)
	}
	secretPath := strings.TrimPrefix(m["secret_ref"].(string), e.url)
	pp := e.must(http.StatusOK, "GET", secretPath+"/payload", nil, "Accept", "text/plain")
	if len(pp.Body) < 32 || !strings.HasPrefix(pp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("passphrase %q", pp.Header.Get("Content-Type"))
	}
	lc := e.must(http.StatusOK, "GET", secretPath+"/lifecycle", nil).JSON(t)
	enc := lc["encryption"].(map[string]any)
	cs := lc["consumers"].([]any)
	if lc["deletion_policy"] != "on_last_consumer" || enc["format"] != "luks1" || enc["key_size"] != 512.0 ||
		len(cs) != 1 || cs[0].(map[string]any)["resource_id"] != "vol-42" {
		t.Fatalf("lifecycle %v", lc)
	}
	if lst := e.must(http.StatusOK, "GET", "/v1/orders", nil).JSON(t); lst["total"] != 0.0 {
		t.Fatalf("a Barbican listing shows our order: %v", lst)
	}
	if lst := e.must(http.StatusOK, "GET", "/v1/orders?type=passphrase", nil).JSON(t); lst["total"] != 1.0 {
		t.Fatalf("?type=passphrase: %v", lst)
	}
	// Flow 3 over REST: in use → 409, nothing lost; consumer gone → 204.
	checkError(t, e.do("DELETE", secretPath, nil), http.StatusConflict)
	e.must(http.StatusOK, "GET", secretPath+"/payload", nil, "Accept", "text/plain")
	e.must(http.StatusOK, "DELETE", secretPath+"/consumers", consumer("cloudstack", "volume", "vol-42"))
	checkError(t, e.do("GET", secretPath, nil), http.StatusNotFound) // on_last_consumer took it
}

func TestGophercloudOrders(t *testing.T) {
	e := newEnv(t, withAuth())
	ctx := context.Background()
	c := gopherClient(t, e, kms.Identity{Project: "p1", User: "gopher", Roles: []string{"creator"}})
	o, err := orders.Create(ctx, c, orders.CreateOpts{Type: orders.KeyOrder, Meta: orders.MetaOpts{
		Name: "gopher-order", Algorithm: "aes", BitLength: 256, Mode: "cbc"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	id := idOfOrderRef(t, o.OrderRef)
	got, err := orders.Get(ctx, c, id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "ACTIVE" || got.Meta.Name != "gopher-order" || got.Meta.BitLength != 256 || got.Created.IsZero() ||
		got.SecretRef == "" || got.CreatorID != "gopher" || !got.Meta.Expiration.IsZero() {
		t.Fatalf("order %+v", got)
	}
	payload, err := secrets.GetPayload(ctx, c, idOfRef(t, got.SecretRef), secrets.GetPayloadOpts{PayloadContentType: "application/octet-stream"}).Extract()
	if err != nil || len(payload) != 32 {
		t.Fatalf("payload %d bytes %v", len(payload), err)
	}
	pages, err := orders.List(c, orders.ListOpts{Limit: 1}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := orders.ExtractOrders(pages)
	if err != nil || len(all) != 1 || all[0].OrderRef != o.OrderRef {
		t.Fatalf("list %+v %v", all, err)
	}
	if err := orders.Delete(ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}
