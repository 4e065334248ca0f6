package keystone

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/keystone"
)

// The validator in process, against the same Keystone: what a token maps
// to, cache_seconds 0, and the service token's renewal.
func TestValidator(t *testing.T) {
	var skew atomic.Int64 // added to the clock
	v, err := keystone.New(keystone.Config{
		AuthURL: ks.AuthURL, Username: "keywarden", Password: world.users["keywarden"].Password,
		ProjectName: "service", CacheTime: 0,
		Clock: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	alice := world.users["alice"]
	tok := token(t, "alice")
	signIns := ks.Requests("POST /v3/auth/tokens")

	id, err := v.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Project != alice.ProjectID || id.User != alice.ID || !slices.Contains(id.Roles, "creator") ||
		id.Source != "keystone:"+ks.AuthURL {
		t.Fatalf("identity %+v, want project %s, user %s, role creator, source keystone:%s", id, alice.ProjectID, alice.ID, ks.AuthURL)
	}
	// No cache: every use asks Keystone; one sign-in serves them all.
	for range 2 {
		if _, err := v.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.Validations(); n != 3 {
		t.Errorf("cache_seconds 0: %d validations for 3 uses, want 3", n)
	}
	if n := ks.Requests("POST /v3/auth/tokens") - signIns; n != 1 {
		t.Errorf("%d service sign-ins for 3 validations, want 1", n)
	}
	// Keystone's tokens live an hour: 59 minutes on, the service token is
	// renewed before it is used again, and validation goes on.
	skew.Store(int64(59 * time.Minute))
	if _, err := v.Authenticate(ctx, tok); err != nil {
		t.Fatalf("after renewal: %v", err)
	}
	if n := ks.Requests("POST /v3/auth/tokens") - signIns; n != 2 {
		t.Errorf("%d service sign-ins after 59 minutes, want 2 (one renewal)", n)
	}
	// Garbage is refused without a Keystone call, as not valid (401), not
	// as Keystone trouble (503).
	before := v.Validations()
	if _, err := v.Authenticate(ctx, "not a token"); err == nil || kms.KindOf(err) == kms.KindUnavailable {
		t.Errorf("garbage: %v", err)
	}
	if v.Validations() != before {
		t.Error("garbage was sent to Keystone")
	}
}
