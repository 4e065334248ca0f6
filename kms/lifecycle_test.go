package kms_test

import (
	"testing"
	"time"

	"github.com/keywarden/keywarden/kms"
)

// A pre-active secret whose Activation Date comes is Active for every
// reader and writer from then on, without a timer.
func TestScheduledActivation(t *testing.T) {
	clk := &clock{t: time.Now()}
	svc, _ := newAudited(t, clk.now)
	at := clk.now().Add(time.Hour)
	sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{State: kms.PreActive, ActivationDate: &at})
	if err != nil || sec.State != kms.PreActive || !sec.ActivationDate.Equal(at.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("create: %+v %v", sec, err)
	}
	active := func() int {
		l, _, err := svc.ListSecrets(ctx, admin, kms.ListQuery{State: kms.Active, View: kms.View{Destroyed: true}})
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	if active() != 0 {
		t.Fatal("listed as active before its date")
	}
	clk.advance(2 * time.Hour)
	if got, _ := svc.GetSecret(ctx, admin, sec.ID, kms.View{Destroyed: true}); got.State != kms.Active {
		t.Fatalf("after its date: %s", got.State)
	}
	if active() != 1 {
		t.Fatal("not listed as active after its date")
	}
	mustKind(t, svc.Destroy(ctx, admin, sec.ID), kms.KindWrongState) // active objects are revoked first
	// Rescheduling is for pre-active objects only.
	_, err = svc.SetActivationDate(ctx, admin, sec.ID, clk.now())
	mustKind(t, err, kms.KindReadOnly)
}

// A create's Activation Date decides its state, whatever State asks: the
// adapters pass the date, kms applies the rule.
func TestActivationDateDecidesCreateState(t *testing.T) {
	svc := newService(t)
	future, past := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
	for _, c := range []struct {
		state kms.State
		at    *time.Time
		want  kms.State
	}{
		{"", &future, kms.PreActive},
		{kms.Active, &future, kms.PreActive},
		{kms.PreActive, &past, kms.Active},
		{kms.PreActive, nil, kms.PreActive},
		{"", nil, kms.Active},
	} {
		sec, err := svc.CreateSecret(ctx, creator, kms.CreateRequest{State: c.state, ActivationDate: c.at})
		if err != nil || sec.State != c.want {
			t.Fatalf("state %q, date %v: %v %v, want %s", c.state, c.at, sec, err, c.want)
		}
	}
}
