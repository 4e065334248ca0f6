package kmip

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/kmstest"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

// recAudit keeps every audit record.
type recAudit struct {
	mu   sync.Mutex
	recs []kms.AuditRecord
}

func (a *recAudit) Record(_ context.Context, r kms.AuditRecord) {
	a.mu.Lock()
	a.recs = append(a.recs, r)
	a.mu.Unlock()
}

func (a *recAudit) Commit(ctx context.Context, r kms.AuditRecord) error {
	a.Record(ctx, r)
	return nil
}

// of returns the ok records of action on id.
func (a *recAudit) of(action, id string) []kms.AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []kms.AuditRecord
	for _, r := range a.recs {
		if r.Action == action && r.SecretID == id && r.Outcome == "ok" {
			out = append(out, r)
		}
	}
	return out
}

// servedEnv is a KMIP server over bolt with its store and audit at hand.
func servedEnv(t *testing.T) (*env, *bolt.Store, *recAudit) {
	st, root := kmstest.Bolt(t)
	a := &recAudit{}
	svc := kmstest.Service(t, kms.Config{Store: st, Master: root, Audit: a})
	ids, err := NewIdentities(sharedCA(t).Certificate(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return startEnv(t, Config{Service: svc, Certificate: serverCert(t), Identities: ids}), st, a
}

func getPlaceholder(extra ...ttlv.Value) op { return byID(kmip14.OperationGet, "", extra...) }

// TestServedAtCreation: a Create+Get batch makes the key not Fresh in the
// create's one write (no fresh_clear); a Create alone stays Fresh until
// its Get clears it; a Get the lookahead does not accept changes nothing;
// a Get that fails after a served Create restores Fresh (fresh_restore).
func TestServedAtCreation(t *testing.T) {
	e, st, a := servedEnv(t)
	c := e.dial("p1", admin...)
	fresh := func(id string) bool {
		t.Helper()
		sec, err := e.svc.GetSecret(context.Background(), who("p1"), id, kms.View{})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Fresh
	}
	// served: id was created not Fresh, said so in its create line, and
	// no Get wrote a fresh_clear.
	served := func(id string) bool {
		t.Helper()
		cr := a.of("create", id)
		return !fresh(id) && len(a.of("fresh_clear", id)) == 0 &&
			len(cr) == 1 && strings.Contains(cr[0].Detail, "served at creation")
	}

	// A Create alone (after a first one, which may write the project's
	// bookkeeping): Fresh until a Get, which writes once more.
	c.do(createAES(c.ver, 128)).ok(0)
	txns := st.Stats().Txns
	alone := uidOf(c.do(createAES(c.ver, 128)).ok(0))
	createWrites := st.Stats().Txns - txns
	if createWrites != 1 {
		t.Fatalf("a Create made %d store writes", createWrites)
	}
	if !fresh(alone) {
		t.Fatal("a Create alone made a key that is not fresh")
	}
	c.do(byID(kmip14.OperationGet, alone)).ok(0)
	if fresh(alone) || len(a.of("fresh_clear", alone)) != 1 {
		t.Fatalf("a first Get: fresh %v, %d fresh_clear lines; want cleared once", fresh(alone), len(a.of("fresh_clear", alone)))
	}

	// Create+Get of the placeholder: the same writes as a Create alone.
	for _, g := range []op{getPlaceholder(), getPlaceholder(v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeTransparentSymmetricKey))} {
		txns = st.Stats().Txns
		r := c.do(createAES(c.ver, 128), g)
		id := uidOf(r.ok(0))
		if got := uidOf(r.ok(1)); got != id {
			t.Fatalf("the Get answered %q for %q", got, id)
		}
		if n := st.Stats().Txns - txns; n != createWrites {
			t.Fatalf("a Create+Get made %d store writes; a Create alone %d", n, createWrites)
		}
		if fresh(id) || len(a.of("fresh_clear", id)) != 0 {
			t.Fatalf("after Create+Get: fresh %v, %d fresh_clear lines", fresh(id), len(a.of("fresh_clear", id)))
		}
		cr := a.of("create", id)
		if len(cr) != 1 || !strings.Contains(cr[0].Detail, "served at creation") {
			t.Fatalf("create lines %+v; want one whose detail says served at creation", cr)
		}
		c.do(byID(kmip14.OperationGet, id)).ok(0) // a later Get writes nothing
		if len(a.of("fresh_clear", id)) != 0 {
			t.Fatal("a later Get wrote a fresh_clear")
		}
	}

	// Register Secret Data + Get, served too.
	r := c.do(registerSecret(c.ver, []byte("pass-word")), getPlaceholder())
	if id := uidOf(r.ok(0)); !served(id) {
		t.Fatal("Register+Get: the secret was not served at creation")
	}

	// 2.x: the Get names the placeholder by enumeration.
	c2 := e.dial("p1", admin...)
	c2.ver = version{2, 0}
	r = c2.do(createAES(c2.ver, 128), getPlaceholder(v(tagUniqueIdentifier, kmip20.UniqueIdentifierIDPlaceholder)))
	if id := uidOf(r.ok(0)); uidOf(r.ok(1)) != id || !served(id) {
		t.Fatal("a 2.0 Create+Get of the ID Placeholder enumeration: the key was not served at creation")
	}

	// A Get the lookahead refuses (a format a symmetric key is not served
	// in): the key is created fresh, and that Get, refused, serves nothing,
	// so it stays fresh with no write.
	r = c.do(createAES(c.ver, 128), getPlaceholder(v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeOpaque)))
	id := uidOf(r.ok(0))
	r.failed(1, uint32(kmip20.ResultReasonKeyFormatTypeNotSupported))
	if cr := a.of("create", id); len(cr) != 1 || strings.Contains(cr[0].Detail, "served") || len(a.of("fresh_restore", id)) != 0 {
		t.Fatalf("refused Get: create lines %+v, %d fresh_restore; want a plain create", cr, len(a.of("fresh_restore", id)))
	}
	if !fresh(id) || len(a.of("fresh_clear", id)) != 0 {
		t.Fatalf("a Get refused for its format: fresh %v, %d fresh_clear; want fresh, none", fresh(id), len(a.of("fresh_clear", id)))
	}

	// A Get that fails after a served Create (its answer exceeds the
	// Maximum Response Size): Fresh is restored, audited.
	pair := c.roundTrip(requestMsg(t, c.ver, nil, createAES(c.ver, 128), getPlaceholder()))
	limit := []ttlv.Value{v(kmip14.TagMaximumResponseSize, len(pair)-40)}
	r = decodeResp(t, c.roundTrip(requestMsg(t, c.ver, limit, createAES(c.ver, 128), getPlaceholder())))
	id = uidOf(r.ok(0))
	r.failed(1, uint32(kmip20.ResultReasonResponseTooLarge))
	if !fresh(id) || len(a.of("fresh_restore", id)) != 1 || len(a.of("fresh_clear", id)) != 0 {
		t.Fatalf("failed Get: fresh %v, %d fresh_restore, %d fresh_clear; want fresh, 1, 0",
			fresh(id), len(a.of("fresh_restore", id)), len(a.of("fresh_clear", id)))
	}
}
