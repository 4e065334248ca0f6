package kms

import (
	"context"
	"time"
)

// The KMIP lifecycle (KMIP 1.4 §3.x state model): pre-active → active →
// deactivated | compromised → destroyed. Destroying an active object is
// refused, as the Baseline and Symmetric Key Lifecycle profiles require.

// Activate moves a pre-active secret to active.
func (s *Service) Activate(ctx context.Context, who Identity, id string) (_ *Secret, err error) {
	ctx = s.begin(ctx, who, "activate")
	defer func() { s.record(ctx, who, "activate", id, err) }()
	return s.update(ctx, id, anyState, func(r *record) error {
		if err := s.allowSecret(SecretUpdate, who, r.Secret); err != nil {
			return err
		}
		if r.State != PreActive {
			return WrongState("secret %s is %s, only a pre-active object can be activated", id, r.State)
		}
		now := s.clock()
		r.State, r.ActivationDate = Active, &now
		return nil
	})
}

// SetActivationDate (KMIP) schedules a pre-active secret's activation: a
// date that has come activates it at once, a future one when it comes.
func (s *Service) SetActivationDate(ctx context.Context, who Identity, id string, at time.Time) (_ *Secret, err error) {
	ctx = s.begin(ctx, who, "activation_date_set")
	defer func() { s.record(ctx, who, "activation_date_set", id, err) }()
	at = at.UTC().Truncate(time.Microsecond)
	return s.update(ctx, id, anyState, func(r *record) error {
		if err := s.allowSecret(SecretUpdate, who, r.Secret); err != nil {
			return err
		}
		if r.State != PreActive {
			return newErr(KindReadOnly, "secret %s is %s: only a pre-active object's Activation Date can change", id, r.State)
		}
		r.ActivationDate = &at
		if !at.After(s.now()) {
			r.State = Active
		}
		return nil
	})
}

// dueActivation presents a pre-active record whose Activation Date has come
// as Active (a copy: r may be shared through the cache). No timer is
// needed: every read and every write goes through it, and the next write
// stores the new state.
func (s *Service) dueActivation(r *record) *record {
	if r.State != PreActive || r.ActivationDate == nil || r.ActivationDate.After(s.now()) {
		return r
	}
	c := r.clone()
	c.State = Active
	return c
}

// Revoke deactivates a secret, or marks it compromised (at date, default now).
func (s *Service) Revoke(ctx context.Context, who Identity, id string, compromised bool, date *time.Time) (*Secret, error) {
	rev := Revocation{Code: RevokedUnspecified, Occurred: date}
	if compromised {
		rev.Code = RevokedKeyCompromise
	}
	return s.RevokeFor(ctx, who, id, rev)
}

// KMIP Revocation Reason Codes that decide the state (1.4 §3.31).
const (
	RevokedUnspecified   = 1
	RevokedKeyCompromise = 2
	RevokedCACompromise  = 3
)

// RevokeFor is Revoke with the reason kept on the object: Key Compromise
// and CA Compromise mark it compromised (at rev.Occurred, else now), any
// other code deactivates it.
func (s *Service) RevokeFor(ctx context.Context, who Identity, id string, rev Revocation) (_ *Secret, err error) {
	if rev.Code < 1 || rev.Code > 7 {
		return nil, Invalid("revocation reason code %d is not KMIP's", rev.Code)
	}
	compromised, date := rev.Code == RevokedKeyCompromise || rev.Code == RevokedCACompromise, rev.Occurred
	ctx = s.begin(ctx, who, "revoke")
	defer func() { s.record(ctx, who, "revoke", id, err) }()
	return s.update(ctx, id, anyState, func(r *record) error {
		if err := s.allowSecret(SecretUpdate, who, r.Secret); err != nil {
			return err
		}
		now := s.clock()
		kept := rev
		if date != nil {
			t := date.UTC().Truncate(time.Microsecond)
			kept.Occurred = &t
		}
		switch {
		case r.State == Destroyed:
			return WrongState("secret %s is destroyed", id)
		case compromised:
			// KMIP 1.4 §4.20: the Compromise Date is when the object
			// entered the state (now); the Compromise Occurrence Date is
			// the caller's belief, or else the object's Initial Date.
			if kept.Occurred == nil {
				created := r.Created
				kept.Occurred = &created
			}
			r.Revocation = &kept
			if r.State != Compromised {
				r.State, r.CompromiseDate = Compromised, &now
			}
		case r.State == Compromised:
			return WrongState("secret %s is compromised and cannot be deactivated", id)
		default:
			r.State, r.DeactivationDate, r.Revocation = Deactivated, &now, &kept
		}
		return nil
	})
}

// Destroy erases a secret's material and keeps its attributes in the
// destroyed state (KMIP). Active secrets must be revoked first.
func (s *Service) Destroy(ctx context.Context, who Identity, id string) (err error) {
	ctx = s.begin(ctx, who, "destroy")
	defer func() { s.record(ctx, who, "destroy", id, err) }()
	_, err = s.update(ctx, id, anyState, func(r *record) error {
		if err := s.allowSecret(SecretDelete, who, r.Secret); err != nil {
			return err
		}
		switch r.State {
		case Active:
			return WrongState("secret %s is active: revoke it before destroying it", id)
		case Destroyed:
			return NotFound("Secret not found.")
		}
		if len(r.Consumers) > 0 {
			// In use: a state of its own that KMIP has no name for.
			return WrongState("Secret has consumers and cannot be destroyed: %s.", consumerList(r.Consumers))
		}
		now := s.clock()
		r.State, r.DestroyDate, r.Sealed, r.HasPayload = Destroyed, &now, nil, false
		return nil
	})
	return err
}
