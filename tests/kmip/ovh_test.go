package kmip_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
	"github.com/ovh/kmip-go/payloads"

	"github.com/keywarden/keywarden/kms"
)

// ovhClient dials with github.com/ovh/kmip-go (a separate Go KMIP
// implementation), which negotiates the version with Discover Versions.
func ovhClient(t *testing.T, s *server, dir string, opts ...kmipclient.Option) *kmipclient.Client {
	t.Helper()
	opts = append([]kmipclient.Option{
		kmipclient.WithRootCAFile(filepath.Join(dir, "ca.pem")),
		kmipclient.WithClientCertFiles(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")),
	}, opts...)
	c, err := kmipclient.Dial(s.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOVHClient(t *testing.T) {
	s := startServer(t)
	dir := s.clientFiles(t, "ovhproj", "carol", "admin")
	for _, ver := range []ovh.ProtocolVersion{ovh.V1_4, ovh.V1_2} {
		t.Run(ver.String(), func(t *testing.T) {
			var c *kmipclient.Client
			if ver == ovh.V1_4 {
				c = ovhClient(t, s, dir) // negotiated: the highest both speak
			} else {
				c = ovhClient(t, s, dir, kmipclient.EnforceVersion(ver))
			}
			if c.Version() != ver {
				t.Fatalf("negotiated %v, want %v", c.Version(), ver)
			}
			ctx := context.Background()
			name := "ovh-key-" + ver.String()
			cr, err := c.Create().AES(256, ovh.CryptographicUsageEncrypt|ovh.CryptographicUsageDecrypt).WithName(name).ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			id := cr.UniqueIdentifier

			reg, err := c.Register().SecretString(ovh.SecretDataTypePassword, "ovh passphrase").WithName("ovh-secret-" + ver.String()).ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Get(reg.UniqueIdentifier).ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			data, err := got.Object.(*ovh.SecretData).Data()
			if err != nil || string(data) != "ovh passphrase" {
				t.Fatalf("secret data %q %v", data, err)
			}

			loc, err := c.Locate().WithName(name).ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(loc.UniqueIdentifier, []string{id}) {
				t.Fatalf("located %v, want %s", loc.UniqueIdentifier, id)
			}
			loc, err = c.Locate().WithObjectType(ovh.ObjectTypeSecretData).ExecContext(ctx)
			if err != nil || !slices.Contains(loc.UniqueIdentifier, reg.UniqueIdentifier) {
				t.Fatalf("locate secret data: %v %v", loc, err)
			}

			key, err := c.Get(id).ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			material, err := key.Object.(*ovh.SymmetricKey).KeyMaterial()
			if err != nil || len(material) != 32 {
				t.Fatalf("key material: %d bytes, %v", len(material), err)
			}
			_, pt, err := s.svc.GetPayload(ctx, who("ovhproj", "carol", "admin"), id)
			if err != nil || string(pt) != string(material) {
				t.Fatal("the service holds different material")
			}

			attrs, err := c.GetAttributes(id).ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[ovh.AttributeName]any{}
			for _, a := range attrs.Attribute {
				byName[a.AttributeName] = a.AttributeValue
			}
			if byName[ovh.AttributeNameState] != ovh.StatePreActive || byName[ovh.AttributeNameCryptographicLength] != int32(256) ||
				byName[ovh.AttributeNameCryptographicAlgorithm] != ovh.CryptographicAlgorithmAES {
				t.Fatalf("attributes: %v", byName)
			}
			list, err := c.GetAttributeList(id).ExecContext(ctx)
			if err != nil || !slices.Contains(list.AttributeName, ovh.AttributeNameCryptographicUsageMask) {
				t.Fatalf("attribute list: %v %v", list, err)
			}

			// Attributes: add a group and a custom attribute, modify, delete.
			if _, err := c.AddAttribute(id, ovh.AttributeNameObjectGroup, "disks").ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.AddAttribute(id, "x-volume", "vol-42").ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
			loc, err = c.Locate().WithAttribute(ovh.AttributeNameObjectGroup, "disks").WithAttribute("x-volume", "vol-42").ExecContext(ctx)
			if err != nil || !slices.Equal(loc.UniqueIdentifier, []string{id}) {
				t.Fatalf("locate by group and custom attribute: %v %v", loc, err)
			}
			if _, err := c.ModifyAttribute(id, "x-volume", "vol-43").ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.DeleteAttribute(id, ovh.AttributeNameObjectGroup).ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
			attrs, err = c.GetAttributes(id, "x-volume", ovh.AttributeNameObjectGroup).ExecContext(ctx)
			// ovh decodes custom attributes it has no type for generically.
			if err != nil || len(attrs.Attribute) != 1 || !strings.Contains(fmt.Sprint(attrs.Attribute[0].AttributeValue), "vol-43") {
				t.Fatalf("after modify/delete: %+v %v", attrs, err)
			}

			if _, err := c.Activate(id).ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Destroy(id).ExecContext(ctx); err == nil {
				t.Fatal("an active key was destroyed")
			}
			if _, err := c.Revoke(id).WithRevocationReasonCode(ovh.RevocationReasonCodeKeyCompromise).
				WithCompromiseOccurrenceDate(time.Now().Add(-time.Minute)).ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Destroy(id).ExecContext(ctx); err != nil {
				t.Fatal(err)
			}
			attrs, err = c.GetAttributes(id, ovh.AttributeNameState).ExecContext(ctx)
			if err != nil || attrs.Attribute[0].AttributeValue != ovh.StateDestroyedCompromised {
				t.Fatalf("state after compromise and destroy: %+v %v", attrs, err)
			}
			sec, err := s.svc.GetSecret(ctx, who("ovhproj", "carol", "admin"), id, kms.View{Destroyed: true})
			if err != nil || sec.State != kms.Destroyed || sec.CompromiseDate == nil {
				t.Fatalf("service view: %+v %v", sec, err)
			}

			// A batch: Create then Activate through the ID Placeholder.
			res, err := c.Create().AES(128, ovh.CryptographicUsageEncrypt).
				Then(func(c *kmipclient.Client) kmipclient.PayloadBuilder { return c.Activate("") }).ExecContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out, err := res.Unwrap()
			if err != nil {
				t.Fatal(err)
			}
			newID := out[0].(*payloads.CreateResponsePayload).UniqueIdentifier
			if sec, _ := s.svc.GetSecret(ctx, who("ovhproj", "carol", "admin"), newID, kms.View{Destroyed: true}); sec == nil || sec.State != kms.Active {
				t.Fatalf("batched activate: %+v", sec)
			}
		})
	}
}

// TestOVHRefusedWithoutTrustedCertificate: the TLS handshake fails for a
// client certificate no configured CA issued.
func TestOVHUnauthorizedCertificate(t *testing.T) {
	s := startServer(t)
	other := newForeignCA(t)
	dir := other.clientFiles(t, "p", "eve", sharedCA(t).CertPEM(), "admin")
	if raceEnabled {
		cert, _ := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(sharedCA(t).CertPEM())
		c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"})
		if err == nil {
			defer c.Close()
			c.Write([]byte{0x42, 0x00, 0x78, 0x01, 0, 0, 0, 0})
			_, err = c.Read(make([]byte, 8))
		}
		if err == nil {
			t.Fatal("served a client of an untrusted CA")
		}
		return
	}
	_, err := kmipclient.Dial(s.addr,
		kmipclient.WithRootCAFile(filepath.Join(dir, "ca.pem")),
		kmipclient.WithClientCertFiles(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")))
	if err == nil {
		t.Fatal("served a client of an untrusted CA")
	}
	t.Logf("refused: %v", err)
	// And with no certificate at all.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sharedCA(t).CertPEM())
	_, err = kmipclient.Dial(s.addr, kmipclient.WithTlsConfig(&tls.Config{RootCAs: pool}))
	if err == nil {
		t.Fatal("served a client without a certificate")
	}
}
