package kmip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/policytest"
)

// The authorization matrix of kms/policytest over a real KMIP connection,
// for the rules KMIP operations ask. Each caller is a client certificate of
// the built-in CA (O = project, CN = user, OU = roles). The caller of
// another identity source has no certificate form here: the REST and kms
// matrices cover it.
var kmipOps = map[kms.Rule]func(id string) op{
	kms.SecretCreate:  func(string) op { return createAES(version{1, 4}, 256) },
	kms.SecretList:    func(string) op { return op{op: kmip14.OperationLocate} },
	kms.SecretRead:    func(id string) op { return byID(kmip14.OperationGetAttributes, id) },
	kms.SecretDecrypt: func(id string) op { return byID(kmip14.OperationGet, id) },
	kms.SecretUpdate:  func(id string) op { return byID(kmip14.OperationAddAttribute, id, attr1("Object Group", "g")) },
	kms.SecretDelete:  func(id string) op { return byID(kmip14.OperationDestroy, id) },
	kms.SecretUse: func(id string) op {
		return byID(kmip14.OperationEncrypt, id, gcmParams(), v(kmip14.TagData, []byte("data")))
	},
}

func TestPolicyMatrixKMIP(t *testing.T) {
	cases := 0
	for rule, mk := range kmipOps {
		for _, sit := range []policytest.Situation{policytest.Public, policytest.Private} {
			e := newEnv(t)
			ownerCert := certFor(t, policytest.Callers[1].Identity)
			owner := e.dialCert(ownerCert)
			ownerID := e.identityOf(ownerCert)
			for _, c := range policytest.Callers {
				if c.Name == "aclothersource" {
					continue
				}
				id := uidOf(owner.do(createAES(owner.ver, 256)).ok(0))
				if rule == kms.SecretUse { // only an Active key is used
					owner.do(byID(kmip14.OperationActivate, id)).ok(0)
				}
				acl := kms.ACLChange{Users: &[]string{policytest.ACLUser}, ProjectAccess: ptrBool(sit == policytest.Public), Replace: true}
				if _, err := e.svc.SetACL(context.Background(), ownerID, id, acl); err != nil {
					t.Fatal(err)
				}
				before, _ := e.svc.GetSecret(context.Background(), ownerID, id, kms.View{Destroyed: true})
				r := e.dialCert(certFor(t, c.Identity)).do(mk(id))
				cases++
				it := r.item(0)
				succeeded := get(it, kmip14.TagResultStatus) == ttlv.EnumValue(kmip14.ResultStatusSuccess)
				want := policytest.Allowed(rule, sit, c.Name)
				switch {
				case want && !succeeded:
					t.Errorf("%s %s by %s: %v %v, want success", rule, sit, c.Name, get(it, kmip14.TagResultReason), get(it, kmip14.TagResultMessage))
				case !want && succeeded && rule == kms.SecretList:
					// Locate answers with what the caller may see: never
					// the object of a project it cannot read.
					for _, u := range all(it, tagUniqueIdentifier, tagResponsePayload) {
						if u.Value == id {
							t.Errorf("%s %s by %s: Locate found %s", rule, sit, c.Name, id)
						}
					}
				case !want && get(it, kmip14.TagResultReason) != ttlv.EnumValue(kmip14.ResultReasonPermissionDenied):
					t.Errorf("%s %s by %s: %v %v, want Permission Denied", rule, sit, c.Name, get(it, kmip14.TagResultReason), get(it, kmip14.TagResultMessage))
				case !want:
					after, _ := e.svc.GetSecret(context.Background(), ownerID, id, kms.View{Destroyed: true})
					if after.Name != before.Name || after.State != before.State || after.Attributes["x-object-group"] != before.Attributes["x-object-group"] ||
						len(after.Attributes) != len(before.Attributes) {
						t.Errorf("%s %s by %s: refused, but the object changed: %+v → %+v", rule, sit, c.Name, before, after)
					}
				}
			}
		}
	}
	t.Logf("%d cases over KMIP", cases)
}

func ptrBool(b bool) *bool { return &b }

func certFor(t *testing.T, id kms.Identity) tls.Certificate {
	return clientCert(t, id.Project, id.User, id.Roles...)
}

func (e *env) dialCert(cert tls.Certificate) *client {
	e.t.Helper()
	c, err := tls.Dial("tcp", e.addr, e.clientTLS(cert))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &client{t: e.t, c: c, ver: version{1, 4}}
}

// identityOf is the identity the server gives cert, its source included.
func (e *env) identityOf(cert tls.Certificate) kms.Identity {
	e.t.Helper()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		e.t.Fatal(err)
	}
	ids, err := NewIdentities(sharedCA(e.t).Certificate(), nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	who, err := ids.Identify([][]*x509.Certificate{{leaf, sharedCA(e.t).Certificate()}})
	if err != nil {
		e.t.Fatal(err)
	}
	return who
}
