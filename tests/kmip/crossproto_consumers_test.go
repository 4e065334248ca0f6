package kmip_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
	"github.com/ovh/kmip-go/ttlv"
)

// kmipConsumers reads x-keywarden-consumer values with Get Attributes.
func kmipConsumers(t *testing.T, c *kmipclient.Client, id string) []string {
	t.Helper()
	ga, err := c.GetAttributes(id, "x-keywarden-consumer").ExecContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range ga.Attribute {
		// ovh/kmip-go keeps a custom attribute's value as a ttlv.Value.
		if v, ok := a.AttributeValue.(ttlv.Value); ok {
			if s, ok := v.Value.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestCrossProtocolConsumers: a disk's consumer added over KMIP is seen
// over REST and the other way round; Destroy waits for the last consumer;
// removing it over KMIP under on_last_consumer destroys the key.
func TestCrossProtocolConsumers(t *testing.T) {
	s := startServer(t)
	c := ovhClient(t, s, s.clientFiles(t, "xproj", "dave", "admin"))
	r := newREST(t, s, "xproj", "dave")
	ctx := context.Background()
	cr, err := c.Create().AES(256, ovh.CryptographicUsageEncrypt|ovh.CryptographicUsageDecrypt).WithName("vol-key").ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := cr.UniqueIdentifier
	// KMIP → REST.
	if _, err := c.AddAttribute(id, "x-keywarden-consumer", "cinder/volume/vol%2F1").ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	code, body := r.do("GET", "/v1/secrets/"+id+"/consumers", "application/json", nil)
	var list struct {
		Consumers []struct {
			Service      string `json:"service"`
			ResourceType string `json:"resource_type"`
			ResourceID   string `json:"resource_id"`
		} `json:"consumers"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal(body, &list); err != nil || code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	if list.Total != 1 || list.Consumers[0].Service != "cinder" || list.Consumers[0].ResourceType != "volume" || list.Consumers[0].ResourceID != "vol/1" {
		t.Fatalf("REST consumers %+v", list)
	}
	// REST → KMIP.
	code, body = r.do("POST", "/v1/secrets/"+id+"/consumers", "application/json",
		map[string]string{"service": "nova", "resource_type": "instance", "resource_id": "i-2"})
	if code != http.StatusOK {
		t.Fatalf("REST add consumer: %d %s", code, body)
	}
	if got := kmipConsumers(t, c, id); len(got) != 2 || got[0] != "cinder/volume/vol%2F1" || got[1] != "nova/instance/i-2" {
		t.Fatalf("KMIP consumers %v", got)
	}
	// Destroy is refused while the key is in use.
	if _, err := c.Revoke(id).WithRevocationReasonCode(ovh.RevocationReasonCodeCessationOfOperation).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Destroy(id).ExecContext(ctx); err == nil {
		t.Fatal("Destroy of a key with consumers succeeded")
	}
	// The deletion policy, over KMIP; REST sees it in the metadata.
	if _, err := c.AddAttribute(id, "x-keywarden-deletion-policy", "on_last_consumer").ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body = r.do("GET", "/v1/secrets/"+id+"/metadata", "application/json", nil); code != http.StatusOK ||
		!json.Valid(body) || !bytes.Contains(body, []byte(`"os_encrypt_key_deletion_policy":"on_last_consumer"`)) {
		t.Fatalf("REST metadata: %d %s", code, body)
	}
	// Over REST one consumer goes; over KMIP the last, which destroys the key.
	code, body = r.do("DELETE", "/v1/secrets/"+id+"/consumers", "application/json",
		map[string]string{"service": "nova", "resource_type": "instance", "resource_id": "i-2"})
	if code != http.StatusOK {
		t.Fatalf("REST remove consumer: %d %s", code, body)
	}
	if _, err := c.DeleteAttribute(id, "x-keywarden-consumer").WithIndex(0).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ = r.do("GET", "/v1/secrets/"+id, "application/json", nil); code != http.StatusNotFound {
		t.Fatalf("the key outlived its last consumer: %d", code)
	}
}
