package kms_test

import (
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// TestCreatePrimesCache: the record a create caches for the next read is
// exactly what its stored bytes verify and decode to, for creates that
// exercise every optional field (empty maps, times, limits, no payload).
func TestCreatePrimesCache(t *testing.T) {
	svc := newServiceWith(t, kms.Config{})
	exp := time.Now().In(time.FixedZone("x", 7200)).Add(time.Hour)
	act := time.Now().Add(-time.Minute)
	// Only creates served at creation (KMIP pairs) prime the cache: not the
	// second (an empty attribute map reads back nil), the fourth (nothing to
	// serve) or the last (not asked).
	reqs := []kms.CreateRequest{
		{Type: kms.Symmetric, Algorithm: "aes", BitLength: 256, Payload: make([]byte, 32),
			ContentType: kms.ContentTypeBinary, ServedAtCreation: true, State: kms.PreActive,
			Attributes: map[string]string{kms.AttrSensitive: "b:false"}, ActivationDate: &act},
		{Name: "n", Type: kms.Opaque, Payload: []byte("p"), ContentType: kms.ContentTypeBinary, ServedAtCreation: true,
			Metadata: map[string]string{"K": "v"}, Attributes: map[string]string{}, Expiration: &exp, Mode: "cbc"},
		{Type: kms.Symmetric, Algorithm: "aes", BitLength: 128, Payload: make([]byte, 16),
			ContentType: kms.ContentTypeBinary, UsageLimits: &kms.UsageLimits{Total: 5, Unit: "object"}, ServedAtCreation: true},
		{Name: "metadata only", Metadata: map[string]string{}, ServedAtCreation: true},
		{Name: "not served", Type: kms.Opaque, Payload: []byte("p"), ContentType: kms.ContentTypeBinary},
	}
	for i, req := range reqs {
		sec, err := svc.CreateSecret(ctx, creator, req)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		err = svc.CachedMatchesStored(ctx, sec.Project, sec.ID)
		if primed := i == 0 || i == 2; primed != (err == nil) {
			t.Fatalf("create %d: primed %v: %v", i, primed, err)
		}
		got, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{})
		if err != nil || got.ID != sec.ID {
			t.Fatalf("create %d: read back %v", i, err)
		}
	}
}

// The secret a create returns is the caller's: changing it changes
// nothing the service serves, whether the create primed the cache (served)
// or handed over its own record (not served, no copy).
func TestCreateReturnsCallersCopy(t *testing.T) {
	svc := newServiceWith(t, kms.Config{})
	for _, served := range []bool{true, false} {
		sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{Name: "mine", Type: kms.Symmetric,
			Algorithm: "aes", BitLength: 256, Payload: make([]byte, 32), ContentType: kms.ContentTypeBinary,
			Attributes: map[string]string{"x-a": "t:1"}, ServedAtCreation: served})
		if err != nil {
			t.Fatal(err)
		}
		sec.Name, sec.Attributes["x-a"], sec.State = "changed", "t:2", kms.Destroyed
		got, err := svc.GetSecret(ctx, creator, sec.ID, kms.View{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "mine" || got.Attributes["x-a"] != "t:1" || got.State == kms.Destroyed {
			t.Fatalf("served %v: the caller's changes reached the service: %+v", served, got)
		}
	}
}
