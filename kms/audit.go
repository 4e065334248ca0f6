package kms

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	// Detail names what an action on something other than a secret was
	// about ("project p1: secrets=10", "container <id>"): never material.
	Detail string `json:"detail,omitempty"`
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
	KindUnauthenticated: "unauthenticated", KindUnavailable: "unavailable",
}

func (s *Service) record(ctx context.Context, who Identity, action, id string, err error) {
	s.recordDetail(ctx, who, action, id, "", err)
}

func (s *Service) recordDetail(ctx context.Context, who Identity, action, id, detail string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = kindNames[KindOf(err)]
	}
	s.audit.Record(ctx, AuditRecord{
		Time: s.clock(), Project: who.Project, User: who.User, Action: action,
		SecretID: id, Outcome: outcome, RequestID: RequestID(ctx), Detail: detail,
	})
}

// containerDetail names a container in the audit trail (nil: not created).
func containerDetail(c *Container) string {
	if c == nil {
		return ""
	}
	return "container " + c.ID
}

// quotaDetail is a quota change as the audit trail shows it, kinds sorted.
func quotaDetail(project string, q Quotas) string {
	kinds := slices.Sorted(maps.Keys(q))
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, q[k]))
	}
	return "project " + project + ": " + strings.Join(parts, " ")
}
