package kmip_test

import (
	"context"
	"testing"
	"time"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
)

// linksOf reads an object's Link attributes with the ovh client.
func linksOf(t *testing.T, c *kmipclient.Client, id string) map[ovh.LinkType]string {
	t.Helper()
	ga, err := c.GetAttributes(id, ovh.AttributeNameLink).ExecContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[ovh.LinkType]string{}
	for _, a := range ga.Attribute {
		if l, ok := a.AttributeValue.(ovh.Link); ok {
			out[l.LinkType] = l.LinkedObjectIdentifier
		}
	}
	return out
}

func TestOVHRekey(t *testing.T) {
	s := startServer(t)
	c := ovhClient(t, s, s.clientFiles(t, "ovhproj", "carol", "admin"))
	ctx := context.Background()
	cr, err := c.Create().AES(256, ovh.CryptographicUsageEncrypt|ovh.CryptographicUsageDecrypt).WithName("ovh-rekey").ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := cr.UniqueIdentifier
	if _, err := c.Activate(old).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	rk, err := c.Rekey(old).WithOffset(24 * time.Hour).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nu := rk.UniqueIdentifier
	if nu == "" || nu == old {
		t.Fatalf("Rekey answered %q", nu)
	}
	if l := linksOf(t, c, old); l[ovh.LinkTypeReplacementObjectLink] != nu {
		t.Fatalf("old key's links %v", l)
	}
	if l := linksOf(t, c, nu); l[ovh.LinkTypeReplacedObjectLink] != old {
		t.Fatalf("new key's links %v", l)
	}
	ga, err := c.GetAttributes(nu, ovh.AttributeNameActivationDate, ovh.AttributeNameState).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ga.Attribute {
		switch v := a.AttributeValue.(type) {
		case time.Time:
			if d := time.Until(v); d < 23*time.Hour || d > 24*time.Hour {
				t.Fatalf("Activation Date %v: not the re-key time + Offset", v)
			}
		case ovh.State:
			if v != ovh.StatePreActive {
				t.Fatalf("replacement is %v", v)
			}
		}
	}
	loc, err := c.Locate().WithName("ovh-rekey").ExecContext(ctx)
	if err != nil || len(loc.UniqueIdentifier) != 1 || loc.UniqueIdentifier[0] != nu {
		t.Fatalf("Locate by name: %v %v", loc, err)
	}

	pr, err := c.CreateKeyPair().ECDSA(ovh.RecommendedCurveP_256, ovh.CryptographicUsageSign, ovh.CryptographicUsageVerify).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := c.RekeyKeyPair(pr.PrivateKeyUniqueIdentifier).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l := linksOf(t, c, rp.PrivateKeyUniqueIdentifier); l[ovh.LinkTypeReplacedObjectLink] != pr.PrivateKeyUniqueIdentifier ||
		l[ovh.LinkTypePublicKeyLink] != rp.PublicKeyUniqueIdentifier {
		t.Fatalf("new private key's links %v", l)
	}
	if l := linksOf(t, c, pr.PublicKeyUniqueIdentifier); l[ovh.LinkTypeReplacementObjectLink] != rp.PublicKeyUniqueIdentifier {
		t.Fatalf("old public key's links %v", l)
	}
}
