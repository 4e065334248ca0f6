package kms

import (
	"context"
	"time"
)

// AuditRecord is one line of the audit trail: who did what to which secret.
// It never carries key material.
type AuditRecord struct {
	Time      time.Time `json:"time"`
	Project   string    `json:"project"`
	User      string    `json:"user,omitempty"`
	Action    string    `json:"action"`
	SecretID  string    `json:"secret_id,omitempty"`
	Outcome   string    `json:"outcome"` // "ok" or the error kind
	RequestID string    `json:"request_id,omitempty"`
}

// Auditor receives audit records; it must not block for long.
type Auditor interface {
	Record(ctx context.Context, r AuditRecord)
}

type nopAuditor struct{}

func (nopAuditor) Record(context.Context, AuditRecord) {}

type requestIDKey struct{}

// WithRequestID tags ctx with the adapter's request id, for the audit trail.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id set by WithRequestID.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

var kindNames = map[Kind]string{
	KindInternal: "error", KindInvalid: "invalid", KindNotFound: "not_found",
	KindForbidden: "forbidden", KindConflict: "conflict", KindTooLarge: "too_large",
	KindUnauthenticated: "unauthenticated",
}

func (s *Service) record(ctx context.Context, who Identity, action, id string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = kindNames[KindOf(err)]
	}
	s.audit.Record(ctx, AuditRecord{
		Time: s.clock(), Project: who.Project, User: who.User, Action: action,
		SecretID: id, Outcome: outcome, RequestID: RequestID(ctx),
	})
}
