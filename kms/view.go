package kms

import (
	"context"
	"time"
)

// View names which secrets a read or a change sees, for what they are
// rather than for a protocol. The zero View sees live secrets only,
// neither destroyed nor expired, which is what a Barbican client knows.
type View struct {
	// Destroyed shows destroyed objects too: their material is gone but
	// their attributes stay (KMIP Get Attributes, Locate by state).
	Destroyed bool
	// Expired shows secrets past their expiration too (the lifecycle and
	// the orphan sweep must still reach them).
	Expired bool
}

// anyState sees every stored secret: the lifecycle and attribute changes,
// and the orphan sweep.
var anyState = View{Destroyed: true, Expired: true}

// shows reports whether v sees sec at now.
func (v View) shows(sec *Secret, now time.Time) bool {
	return (v.Destroyed || sec.State != Destroyed) && (v.Expired || !sec.Expired(now))
}

// read loads a secret by id as v sees it; NotFound when v does not.
func (s *Service) read(ctx context.Context, id string, v View) (loaded, error) {
	l, err := s.load(ctx, id)
	if err != nil {
		return l, err
	}
	if !v.shows(l.rec.Secret, s.now()) {
		return loaded{}, NotFound("Secret not found.")
	}
	return l, nil
}
