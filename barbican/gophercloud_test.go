package barbican

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/acls"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/secrets"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/keywarden/keywarden/kms"
)

// gopherClient is a gophercloud key-manager client on the test server's
// fixed endpoint, authenticated with a minted token (X-Auth-Token).
func gopherClient(t *testing.T, e *env, id kms.Identity) *gophercloud.ServiceClient {
	t.Helper()
	pc := &gophercloud.ProviderClient{HTTPClient: *e.srv.Client()}
	pc.SetToken(mint(t, id, time.Hour))
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: e.url + "/", ResourceBase: e.url + "/v1/", Type: "key-manager"}
}

func TestGophercloudSecrets(t *testing.T) {
	e := newEnv(t, withAuth())
	ctx := context.Background()
	c := gopherClient(t, e, kms.Identity{Project: "p1", User: "gopher", Roles: []string{"creator"}})

	// Create with a payload and an expiration (RFC3339 without Z).
	exp := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second)
	created, err := secrets.Create(ctx, c, secrets.CreateOpts{
		Name: "gopher-key", Algorithm: "aes", BitLength: 256, Mode: "cbc",
		Payload:            base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		PayloadContentType: "application/octet-stream", PayloadContentEncoding: "base64",
		SecretType: secrets.SymmetricSecret, Expiration: &exp,
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	id := idOfRef(t, created.SecretRef)

	got, err := secrets.Get(ctx, c, id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "gopher-key" || got.Algorithm != "aes" || got.BitLength != 256 || got.Mode != "cbc" ||
		got.SecretType != "symmetric" || got.Status != "ACTIVE" || got.CreatorID != "gopher" ||
		got.ContentTypes["default"] != "application/octet-stream" || got.SecretRef != created.SecretRef {
		t.Errorf("secret %+v", got)
	}
	if !got.Expiration.Equal(exp) || got.Created.IsZero() || time.Since(got.Created) > time.Minute {
		t.Errorf("times: expiration %v (want %v), created %v", got.Expiration, exp, got.Created)
	}

	payload, err := secrets.GetPayload(ctx, c, id, secrets.GetPayloadOpts{PayloadContentType: "application/octet-stream"}).Extract()
	if err != nil || string(payload) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("payload %q, %v", payload, err)
	}

	// Two-step: metadata first, payload by PUT.
	twoStep, err := secrets.Create(ctx, c, secrets.CreateOpts{Name: "two-step"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	tsID := idOfRef(t, twoStep.SecretRef)
	if err := secrets.Update(ctx, c, tsID, secrets.UpdateOpts{ContentType: "text/plain", Payload: "later"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	payload, err = secrets.GetPayload(ctx, c, tsID, nil).Extract() // gophercloud's default Accept: text/plain
	if err != nil || string(payload) != "later" {
		t.Fatalf("two-step payload %q, %v", payload, err)
	}
	err = secrets.Update(ctx, c, tsID, secrets.UpdateOpts{ContentType: "text/plain", Payload: "again"}).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Errorf("second PUT: %v", err)
	}

	// List, with paging followed by gophercloud.
	for i := range 3 {
		if _, err := secrets.Create(ctx, c, secrets.CreateOpts{Name: "page-" + string(rune('a'+i))}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	pages := 0
	err = secrets.List(c, secrets.ListOpts{Limit: 2, Sort: "name"}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		pages++
		list, err := secrets.ExtractSecrets(p)
		for _, s := range list {
			all = append(all, s.Name)
		}
		return true, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"gopher-key", "page-a", "page-b", "page-c", "two-step"}; !slices.Equal(all, want) || pages != 3 {
		t.Errorf("listed %v in %d pages", all, pages)
	}
	allPages, err := secrets.List(c, secrets.ListOpts{Name: "page", CreatedQuery: &secrets.DateQuery{Date: time.Now().Add(-time.Hour), Filter: secrets.DateFilterGT}}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := secrets.ExtractSecrets(allPages); len(list) != 3 {
		t.Errorf("filtered list: %d", len(list))
	}

	// Metadata.
	if _, err := secrets.CreateMetadata(ctx, c, id, secrets.MetadataOpts{"volume": "vol-1"}).Extract(); err != nil {
		t.Fatal(err)
	}
	if err := secrets.CreateMetadatum(ctx, c, id, secrets.MetadatumOpts{Key: "format", Value: "luks"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	md, err := secrets.GetMetadata(ctx, c, id).Extract()
	if err != nil || len(md) != 2 || md["volume"] != "vol-1" || md["format"] != "luks" {
		t.Fatalf("metadata %v, %v", md, err)
	}
	mt, err := secrets.UpdateMetadatum(ctx, c, id, secrets.MetadatumOpts{Key: "format", Value: "luks2"}).Extract()
	if err != nil || mt.Key != "format" || mt.Value != "luks2" {
		t.Fatalf("update metadatum %+v, %v", mt, err)
	}
	mt, err = secrets.GetMetadatum(ctx, c, id, "format").Extract()
	if err != nil || mt.Value != "luks2" {
		t.Fatalf("get metadatum %+v, %v", mt, err)
	}
	if err := secrets.DeleteMetadatum(ctx, c, id, "format").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.GetMetadatum(ctx, c, id, "format").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("deleted metadatum: %v", err)
	}

	// ACLs.
	users := []string{"reader"}
	if _, err := acls.SetSecretACL(ctx, c, id, acls.SetOpts{{Type: "read", Users: &users}}).Extract(); err != nil {
		t.Fatal(err)
	}
	acl, err := acls.GetSecretACL(ctx, c, id).Extract()
	if err != nil || !slices.Equal((*acl)["read"].Users, users) || !(*acl)["read"].ProjectAccess || (*acl)["read"].Created.IsZero() {
		t.Fatalf("acl %+v, %v", acl, err)
	}
	private := false
	if _, err := acls.UpdateSecretACL(ctx, c, id, acls.SetOpts{{Type: "read", ProjectAccess: &private}}).Extract(); err != nil {
		t.Fatal(err)
	}
	if err := acls.DeleteSecretACL(ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// Delete.
	if err := secrets.Delete(ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	_, err = secrets.Get(ctx, c, id).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	var unexpected gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &unexpected) || len(unexpected.Body) == 0 {
		t.Errorf("error %T %v", err, err)
	}
}

// TestGophercloudMicroversionAndNoAuthHeaders drives the client the other
// documented way: X-Project-Id in MoreHeaders and a microversion.
func TestGophercloudMicroversionAndNoAuthHeaders(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pc := &gophercloud.ProviderClient{HTTPClient: *e.srv.Client()}
	c := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: e.url + "/", ResourceBase: e.url + "/v1/",
		Type: "key-manager", Microversion: "1.1", MoreHeaders: map[string]string{"X-Project-Id": "p1", "X-User-Id": "u1"}}
	created, err := secrets.Create(ctx, c, secrets.CreateOpts{Name: "mv", Payload: "pw", PayloadContentType: "text/plain"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	res := secrets.Get(ctx, c, idOfRef(t, created.SecretRef))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := res.Header.Get("OpenStack-API-Version"); got != "key-manager 1.1" {
		t.Errorf("microversion echo %q", got)
	}
	var body map[string]any
	if err := res.ExtractInto(&body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["consumers"]; !ok {
		t.Error("no consumers at 1.1")
	}
}
