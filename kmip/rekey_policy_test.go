package kmip

import (
	"context"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/policytest"
)

// The matrix of kms/policytest for the operations of this branch: Re-key
// asks secret:put on the old key and secrets:post in its project, a
// consumer added as a vendor attribute secret_consumers:post. The
// expectations are the matrix's rows for those rules.
func TestPolicyMatrixRekeyAndConsumers(t *testing.T) {
	cases := []struct {
		name  string
		allow func(policytest.Situation, string) bool
		op    func(id string) op
	}{
		{"rekey", func(sit policytest.Situation, c string) bool {
			return policytest.Allowed(kms.SecretUpdate, sit, c) && policytest.Allowed(kms.SecretCreate, sit, c)
		}, func(id string) op { return byID(kmip14.OperationReKey, id) }},
		{"consumer", func(sit policytest.Situation, c string) bool { return policytest.Allowed(kms.ConsumerAdd, sit, c) },
			func(id string) op {
				return byID(kmip14.OperationAddAttribute, id, attr1("x-keywarden-consumer", "nova/instance/i-1"))
			}},
	}
	for _, sit := range []policytest.Situation{policytest.Public, policytest.Private} {
		e := newEnv(t)
		ownerCert := certFor(t, policytest.Callers[1].Identity)
		owner := e.dialCert(ownerCert)
		ownerID := e.identityOf(ownerCert)
		for _, tc := range cases {
			for _, c := range policytest.Callers {
				if c.Name == "aclothersource" {
					continue
				}
				id := uidOf(owner.do(createAES(owner.ver, 256)).ok(0))
				acl := kms.ACLChange{Users: &[]string{policytest.ACLUser}, ProjectAccess: ptrBool(sit == policytest.Public), Replace: true}
				if _, err := e.svc.SetACL(context.Background(), ownerID, id, acl); err != nil {
					t.Fatal(err)
				}
				it := e.dialCert(certFor(t, c.Identity)).do(tc.op(id)).item(0)
				ok := get(it, kmip14.TagResultStatus) == ttlv.EnumValue(kmip14.ResultStatusSuccess)
				want := tc.allow(sit, c.Name)
				switch {
				case want && !ok:
					t.Errorf("%s %s by %s: %v %v, want success", tc.name, sit, c.Name, get(it, kmip14.TagResultReason), get(it, kmip14.TagResultMessage))
				case !want && get(it, kmip14.TagResultReason) != ttlv.EnumValue(kmip14.ResultReasonPermissionDenied):
					t.Errorf("%s %s by %s: %v, want Permission Denied", tc.name, sit, c.Name, get(it, kmip14.TagResultReason))
				case !want:
					after, _ := e.svc.GetSecret(context.Background(), ownerID, id, kms.View{})
					if after.Name != "" || len(after.Consumers) != 0 || len(after.Attributes) != 0 {
						t.Errorf("%s %s by %s: refused, but the object changed: %+v", tc.name, sit, c.Name, after)
					}
				}
			}
		}
	}
}
