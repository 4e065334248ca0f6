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
	Time    time.Time `json:"time"`
	Project string    `json:"project"`
	User    string    `json:"user,omitempty"`
	// Roles (comma separated), Source, Protocol and Remote complete the
	// caller: what the policy saw and where the request came from.
	Roles     string `json:"roles,omitempty"`
	Source    string `json:"source,omitempty"`
	Protocol  string `json:"protocol,omitempty"`
	Remote    string `json:"remote,omitempty"`
	Action    string `json:"action"`
	SecretID  string `json:"secret_id,omitempty"`
	Outcome   string `json:"outcome"` // "ok" or the error kind
	RequestID string `json:"request_id,omitempty"`
	// Detail names what an action on something other than a secret was
	// about ("project p1: secrets=10", "container <id>"): never material.
	Detail string `json:"detail,omitempty"`
}

// Auditor receives audit records. Record is best effort and must not block
// for long (reads, refusals); Commit returns only once the record is
// durable, and a state change whose Commit fails is not made.
type Auditor interface {
	Record(ctx context.Context, r AuditRecord)
	Commit(ctx context.Context, r AuditRecord) error
}

// JournalAuditor is an Auditor that can take a change's record after the
// fact from a store.Journal, which made it durable with the change itself
// (audit.Log). Append never drops a record; JournalSync makes every
// appended record durable, or fails; LastJournal is the highest LSN the
// trail held at open (records are numbered by the store, from 1, without
// gaps); JournalErr is not nil while appended records fail to be written.
type JournalAuditor interface {
	Auditor
	Append(r AuditRecord, seq uint64)
	JournalSync(ctx context.Context) error
	JournalErr() error
	LastJournal() uint64
}

type nopAuditor struct{}

func (nopAuditor) Record(context.Context, AuditRecord)       {}
func (nopAuditor) Commit(context.Context, AuditRecord) error { return nil }

type requestKey struct{}

// request is what an adapter knows of the request beyond its identity.
type request struct{ id, protocol, remote string }

// WithRequest tags ctx with the adapter's request id, its protocol ("rest",
// "kmip") and the caller's address, for the audit trail.
func WithRequest(ctx context.Context, id, protocol, remote string) context.Context {
	return context.WithValue(ctx, requestKey{}, request{id, protocol, remote})
}

// WithRequestID is WithRequest with only the id (tests, the CLI).
func WithRequestID(ctx context.Context, id string) context.Context {
	return WithRequest(ctx, id, "", "")
}

// RequestID returns the id set by WithRequest.
func RequestID(ctx context.Context) string {
	r, _ := ctx.Value(requestKey{}).(request)
	return r.id
}

var kindNames = map[Kind]string{
	KindInternal: "error", KindInvalid: "invalid", KindNotFound: "not_found",
	KindForbidden: "forbidden", KindConflict: "conflict", KindTooLarge: "too_large",
	KindUnauthenticated: "unauthenticated", KindUnavailable: "unavailable",
	KindSingleValued: "single_valued", KindNoAttribute: "no_attribute", KindNoInstance: "no_instance",
	KindWrongState: "wrong_state", KindReadOnly: "read_only", KindMultiValued: "multi_valued",
	KindUsage: "usage", KindSensitive: "sensitive", KindNotExtractable: "not_extractable",
	KindCryptoFailure: "crypto_failure",
}

func (s *Service) record(ctx context.Context, who Identity, action, id string, err error) {
	s.recordDetail(ctx, who, action, id, "", err)
}

func (s *Service) recordDetail(ctx context.Context, who Identity, action, id, detail string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = kindNames[KindOf(err)]
	} else if c := changeOf(ctx); c != nil && c.recorded && c.action == action {
		return // the durable record of the change is on the trail (commit)
	}
	s.audit.Record(ctx, s.auditRecord(ctx, who, action, id, detail, outcome))
}

func (s *Service) auditRecord(ctx context.Context, who Identity, action, id, detail, outcome string) AuditRecord {
	req, _ := ctx.Value(requestKey{}).(request)
	return AuditRecord{
		Time: s.clock(), Project: who.Project, User: who.User, Roles: strings.Join(who.Roles, ","),
		Source: who.Source, Protocol: req.protocol, Remote: req.remote, Action: action,
		SecretID: id, Outcome: outcome, RequestID: req.id, Detail: detail,
	}
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
