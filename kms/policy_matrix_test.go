package kms_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/policytest"
)

// matrixObjects are made fresh by the owner for every case: a secret with
// a payload and a consumer registered by p1, a generic container naming
// it, and an order, each with the situation's read ACL (eve named).
type matrixObjects struct {
	secret, container, order string
	lastConsumer             string // on_last_consumer secret with one consumer
	plain                    string // no consumer: one a delete can remove
	aesKey                   string // an AES key, for the cryptographic services
}

var (
	matrixOwner  = policytest.Callers[1].Identity
	volA         = kms.Consumer{Service: "volume", ResourceType: "volume", ResourceID: "a"}
	volB         = kms.Consumer{Service: "volume", ResourceType: "volume", ResourceID: "b"}
	matrixOrphan = consumers.OrphanRule{Grace: time.Hour}
)

func makeObjects(t *testing.T, svc *kms.Service, s policytest.Situation) matrixObjects {
	t.Helper()
	acl := kms.ACLChange{Users: &[]string{policytest.ACLUser}, ProjectAccess: ptr(s == policytest.Public), Replace: true}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var o matrixObjects
	sec := storeKey(t, svc, matrixOwner, kms.CreateRequest{Name: "m"})
	o.secret = sec.ID
	_, err := svc.SetACL(ctx, matrixOwner, sec.ID, acl)
	must(err)
	for _, c := range []kms.Consumer{volA, volB} {
		_, err = svc.AddConsumer(ctx, matrixOwner, sec.ID, c)
		must(err)
	}
	plain := storeKey(t, svc, matrixOwner, kms.CreateRequest{Name: "plain"})
	o.plain = plain.ID
	_, err = svc.SetACL(ctx, matrixOwner, plain.ID, acl)
	must(err)
	key := storeKey(t, svc, matrixOwner, kms.CreateRequest{Type: kms.Symmetric, Algorithm: "aes", Mode: "gcm",
		Payload: make([]byte, 32), ContentType: kms.ContentTypeBinary})
	o.aesKey = key.ID
	_, err = svc.SetACL(ctx, matrixOwner, key.ID, acl)
	must(err)
	last := storeKey(t, svc, matrixOwner, kms.CreateRequest{Name: "last", DeletionPolicy: kms.OnLastConsumer})
	o.lastConsumer = last.ID
	_, err = svc.SetACL(ctx, matrixOwner, last.ID, acl)
	must(err)
	_, err = svc.AddConsumer(ctx, matrixOwner, last.ID, volA)
	must(err)
	c, err := svc.CreateContainer(ctx, matrixOwner, kms.ContainerRequest{Type: "generic",
		Secrets: []kms.ContainerSecret{{Name: "k", SecretID: sec.ID}}})
	must(err)
	o.container = c.ID
	_, err = svc.SetContainerACL(ctx, matrixOwner, c.ID, acl)
	must(err)
	_, err = svc.AddContainerConsumer(ctx, matrixOwner, c.ID, kms.ContainerConsumer{Name: "lb", URL: "u"})
	must(err)
	ord, err := svc.CreateOrder(ctx, matrixOwner, kms.OrderRequest{Type: kms.OrderKey, BitLength: 256})
	must(err)
	o.order = ord.ID
	return o
}

func ptr[T any](v T) *T { return &v }

// matrixOps calls, for each rule, the Service operation that asks it.
var matrixOps = map[kms.Rule]func(svc *kms.Service, who kms.Identity, o matrixObjects) error{
	kms.SecretCreate: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		_, err := svc.CreateSecret(ctx, who, kms.CreateRequest{Payload: []byte("x"), ContentType: "text/plain"})
		return err
	},
	kms.SecretList: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		_, _, err := svc.ListSecrets(ctx, who, kms.ListQuery{})
		return err
	},
	kms.SecretRead: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.GetSecret(ctx, who, o.secret, kms.View{})
		return err
	},
	kms.SecretDecrypt: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, _, err := svc.GetPayload(ctx, who, o.secret)
		return err
	},
	kms.SecretUpdate: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.ChangeAttribute(ctx, who, o.secret, kms.AttrOp{Kind: kms.AttrSet, Name: kms.AttrName, Value: "renamed"})
		return err
	},
	kms.SecretDelete: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		return svc.DeleteSecret(ctx, who, o.plain, false)
	},
	kms.SecretClone: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.CloneSecret(ctx, who, o.secret, kms.CloneRequest{})
		return err
	},
	kms.SecretUse: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.Encrypt(ctx, who, o.aesKey, kms.CryptoParams{}, []byte("data"))
		// Opening a stream is the same use, decided the same way.
		cs, _, serr := svc.OpenCipherStream(ctx, who, o.aesKey, kms.CryptoParams{}, true)
		if cs != nil {
			cs.Close()
		}
		if kms.KindOf(err) != kms.KindOf(serr) {
			return fmt.Errorf("Encrypt: %v; a stream: %v", err, serr)
		}
		return err
	},
	kms.SecretACLRead: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.GetACL(ctx, who, o.secret)
		return err
	},
	kms.SecretACLChange: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.SetACL(ctx, who, o.secret, kms.ACLChange{Users: &[]string{policytest.ACLUser, "x"}})
		return err
	},
	kms.SecretACLDelete: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		return svc.DeleteACL(ctx, who, o.secret)
	},
	kms.SecretMetaRead: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.GetMetadata(ctx, who, o.secret)
		return err
	},
	kms.SecretMetaWrite: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		return svc.SetMetadatum(ctx, who, o.secret, "k", "v", true)
	},
	kms.ConsumerRead: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, _, err := svc.ListConsumers(ctx, who, o.secret, 0, 10)
		return err
	},
	kms.ConsumerAdd: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.AddConsumer(ctx, who, o.secret, kms.Consumer{Service: "image", ResourceType: "image", ResourceID: "c"})
		return err
	},
	kms.ConsumerRemove: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, _, err := svc.RemoveConsumer(ctx, who, o.secret, volA)
		return err
	},
	kms.ConsumerDestroy: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, destroyed, err := svc.RemoveConsumer(ctx, who, o.lastConsumer, volA)
		if err == nil && !destroyed {
			return kms.Invalid("the last consumer went but the secret stayed")
		}
		return err
	},
	kms.ContainerCreate: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		_, err := svc.CreateContainer(ctx, who, kms.ContainerRequest{Type: "generic"})
		return err
	},
	kms.ContainerList: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		_, _, err := svc.ListContainers(ctx, who, kms.ContainerQuery{})
		return err
	},
	kms.ContainerRead: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.GetContainer(ctx, who, o.container)
		return err
	},
	kms.ContainerDelete: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		return svc.DeleteContainer(ctx, who, o.container)
	},
	kms.ContainerSecretChange: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.RemoveContainerSecret(ctx, who, o.container, kms.ContainerSecret{Name: "k", SecretID: o.secret})
		return err
	},
	kms.ContainerConsumerRead: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, _, err := svc.ListContainerConsumers(ctx, who, o.container, 0, 10)
		return err
	},
	kms.ContainerConsumerUse: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.AddContainerConsumer(ctx, who, o.container, kms.ContainerConsumer{Name: "x", URL: "y"})
		return err
	},
	kms.ContainerACLRead: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.GetContainerACL(ctx, who, o.container)
		return err
	},
	kms.ContainerACLChange: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.SetContainerACL(ctx, who, o.container, kms.ACLChange{ProjectAccess: ptr(true)})
		return err
	},
	kms.OrderCreate: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		_, err := svc.CreateOrder(ctx, who, kms.OrderRequest{Type: kms.OrderKey, BitLength: 256})
		return err
	},
	kms.OrderList: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		_, _, err := svc.ListOrders(ctx, who, kms.OrderQuery{})
		return err
	},
	kms.OrderRead: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		_, err := svc.GetOrder(ctx, who, o.order)
		return err
	},
	kms.OrderDelete: func(svc *kms.Service, who kms.Identity, o matrixObjects) error {
		return svc.DeleteOrder(ctx, who, o.order)
	},
	kms.QuotaRead: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		_, err := svc.EffectiveQuotas(ctx, who)
		return err
	},
	kms.ProjectQuotaAdmin: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		return svc.SetProjectQuotas(ctx, who, policytest.Project, kms.Quotas{kms.QuotaSecrets: 100})
	},
	kms.OrphanList: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		_, _, err := svc.Orphans(ctx, who, matrixOrphan, false)
		return err
	},
	kms.OrphanDestroy: func(svc *kms.Service, who kms.Identity, _ matrixObjects) error {
		_, _, err := svc.Orphans(ctx, who, matrixOrphan, true)
		return err
	},
}

// TestPolicyMatrix runs every rule × caller kind × situation through the
// Service and holds each answer to policytest's expectations: allowed
// means no error, refused means Forbidden, and a refused case leaves the
// objects as they were.
func TestPolicyMatrix(t *testing.T) {
	cases := 0
	for _, rule := range policytest.Rules() {
		op, ok := matrixOps[rule]
		if !ok {
			t.Fatalf("no operation for rule %s", rule)
		}
		for _, sit := range []policytest.Situation{policytest.Public, policytest.Private} {
			svc := newServiceOnMem(t)
			for _, c := range policytest.Callers {
				o := makeObjects(t, svc, sit)
				before := snapshot(t, svc, o)
				err := op(svc, c.Identity, o)
				cases++
				want := policytest.Allowed(rule, sit, c.Name)
				switch {
				case want && err != nil:
					t.Errorf("%s %s by %s: refused (%v), want allowed", rule, sit, c.Name, err)
				case !want && kms.KindOf(err) != kms.KindForbidden:
					t.Errorf("%s %s by %s: %v, want forbidden", rule, sit, c.Name, err)
				case !want:
					if after := snapshot(t, svc, o); after != before {
						t.Errorf("%s %s by %s: refused, but the objects changed:\n%s\n%s", rule, sit, c.Name, before, after)
					}
				}
			}
		}
	}
	t.Logf("%d cases (%d rules × 2 situations × %d caller kinds)", cases, len(policytest.Rules()), len(policytest.Callers))
}

// snapshot is what the owner sees of the matrix objects.
func snapshot(t *testing.T, svc *kms.Service, o matrixObjects) string {
	t.Helper()
	s := ""
	for _, id := range []string{o.secret, o.lastConsumer, o.plain} {
		sec, err := svc.GetSecret(ctx, matrixOwner, id, kms.View{})
		if err != nil {
			s += id + " gone; "
			continue
		}
		s += sec.Name + " " + string(sec.State) + " acl=" + fmtACL(sec.ACL) + " consumers=" + strconv.Itoa(len(sec.Consumers)) +
			" meta=" + strconv.Itoa(len(sec.Metadata)) + "; "
	}
	c, err := svc.GetContainer(ctx, matrixOwner, o.container)
	if err != nil {
		s += "container gone; "
	} else {
		s += "container secrets=" + strconv.Itoa(len(c.Secrets)) + " consumers=" + strconv.Itoa(len(c.Consumers)) + " acl=" + fmtACL(c.ACL) + "; "
	}
	if _, err := svc.GetOrder(ctx, matrixOwner, o.order); err != nil {
		s += "order gone; "
	}
	list, _, _ := svc.ListSecrets(ctx, policytest.Callers[0].Identity, kms.ListQuery{})
	return s + "p1 secrets=" + strconv.Itoa(len(list))
}

func fmtACL(a *kms.ACL) string {
	if a == nil {
		return "none"
	}
	access := "project"
	if !a.ProjectAccess {
		access = "private"
	}
	return access + "/" + a.Source + "/" + strconv.Itoa(len(a.Users))
}

func newServiceOnMem(t *testing.T) *kms.Service {
	return newServiceWith(t, kms.Config{Store: newMemStore()})
}
