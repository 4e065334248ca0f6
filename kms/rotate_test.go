package kms_test

import (
	"testing"

	"github.com/keywarden/keywarden/kms"
)

func TestRotateMaster(t *testing.T) {
	st, oldKey := newStore(t)
	_, newKey := newStore(t)
	before := newServiceWith(t, kms.Config{Store: st, Master: oldKey})
	ids := map[string]string{}
	for _, p := range []string{"p1", "p2", "p:3"} {
		who := kms.Identity{Project: p, Roles: []string{kms.RoleAdmin}}
		sec, err := before.CreateSecret(ctx, who, kms.CreateRequest{Payload: []byte("payload of " + p), ContentType: "text/plain"})
		if err != nil {
			t.Fatal(err)
		}
		ids[p] = sec.ID
	}
	for range 2 { // a second run finds everything done and changes nothing
		n, err := kms.RotateMaster(ctx, st, oldKey, newKey)
		if err != nil || n != 3 {
			t.Fatalf("rotate: %d %v", n, err)
		}
	}
	after := newServiceWith(t, kms.Config{Store: st, Master: newKey})
	stale := newServiceWith(t, kms.Config{Store: st, Master: oldKey})
	for p, id := range ids {
		who := kms.Identity{Project: p, Roles: []string{kms.RoleAdmin}}
		_, pt, err := after.GetPayload(ctx, who, id)
		if err != nil || string(pt) != "payload of "+p {
			t.Fatalf("project %s after rotation: %q %v", p, pt, err)
		}
		if _, _, err := stale.GetPayload(ctx, who, id); err == nil {
			t.Fatalf("project %s still opens under the retired root key", p)
		}
	}
}
