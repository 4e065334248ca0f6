package kms

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/kms/store"
)

// Every state change is audited, or it does not happen (Vault's rule for
// audit devices). A public method that changes state opens a change with
// begin; every store write goes through commit, which first makes the
// change's record durable and refuses the write when it cannot. A write
// outside a change is a bug and is refused too, so no path can forget.

// change is one audited state change in flight.
type change struct {
	who    Identity
	action string
	// detail, when set, names the object as the method sees it (a
	// container's secret ref) in place of what the write knows.
	detail string
	// recorded: a durable record of the change is on the trail; the
	// method's own deferred record of success is then not written again.
	recorded bool
	// lazy: a change whose loss in a machine crash is harmless (a Fresh
	// clear): with a store.LazyJournal it does not wait for the sync.
	lazy bool
}

type changeKey struct{}

func changeOf(ctx context.Context) *change {
	c, _ := ctx.Value(changeKey{}).(*change)
	return c
}

// begin opens the audited change action by who.
func (s *Service) begin(ctx context.Context, who Identity, action string) context.Context {
	return context.WithValue(ctx, changeKey{}, &change{who: who, action: action})
}

// beginDetail is begin with the record's detail decided by the method.
func (s *Service) beginDetail(ctx context.Context, who Identity, action, detail string) context.Context {
	return context.WithValue(ctx, changeKey{}, &change{who: who, action: action, detail: detail})
}

// beginLazy is begin for a change that need not wait for durability.
func (s *Service) beginLazy(ctx context.Context, who Identity, action string) context.Context {
	return context.WithValue(ctx, changeKey{}, &change{who: who, action: action, lazy: true})
}

var errUnaudited = errors.New("kms: a store write outside an audited change")

// commit records the change durably, then applies the transaction; with a
// journaling store, both in one sync (journal.go). Otherwise a
// failed transaction (a conflict too) is noted on the trail, best effort:
// the durable record said the change was about to be made. Its outcome is
// "aborted" (nothing written), "retried" (a conflict) or "unknown" (the
// store timed out and may have applied it).
func (s *Service) commit(ctx context.Context, id, detail string, cmps []store.Cmp, ops []store.Op) error {
	c := changeOf(ctx)
	if c == nil {
		return internal("write", errUnaudited)
	}
	if c.detail != "" {
		detail = c.detail
	}
	rec := s.auditRecord(ctx, c.who, c.action, id, detail, "ok")
	if s.journal != nil {
		// The record is the transaction's note (journal.go): durable with
		// it, and absent if it fails, so a failure needs no record. While
		// the trail cannot take the records it was handed, no change is
		// made: they would pile up unseen.
		if s.jaudit.JournalErr() != nil {
			sctx, cancel := context.WithTimeout(ctx, journalRetryWait)
			err := s.jaudit.JournalSync(sctx)
			cancel()
			if err != nil {
				return &Error{Kind: KindUnavailable, Err: err,
					Msg: "the audit trail cannot record this change, so it was not made; try again later"}
			}
		}
		txn := s.journal.TxnNote
		if lj, ok := s.journal.(store.LazyJournal); ok && c.lazy {
			// Visible now, durable with the next sync; the trail gets
			// the line only then (store.LazyJournal), so it never names
			// a change a machine crash took back.
			txn = lj.TxnNoteLazy
		}
		// Bounded: on a hung data disk the commit in progress cannot end,
		// but a change still waiting for it is refused, cleanly (the
		// journal answers a context error only for a change it never
		// applied), instead of waiting as long as the disk does.
		wctx, cancel := context.WithTimeout(ctx, storeWriteWait)
		err := txn(wctx, cmps, ops, encodeNote(rec))
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return &Error{Kind: KindUnavailable, Err: err,
					Msg: "the store did not take this change within " + storeWriteWait.String() + " (is its disk answering?), so it was not made; try again later"}
			}
			return err
		}
		c.recorded = true
		s.names.touched(ctx, ops)
		return nil
	}
	if err := s.audit.Commit(ctx, rec); err != nil {
		return &Error{Kind: KindUnavailable, Err: err,
			Msg: "the audit trail cannot record this change, so it was not made; try again later"}
	}
	err := s.st.Txn(ctx, cmps, ops)
	if err != nil {
		rec.Outcome, rec.Time = "aborted", s.clock()
		switch {
		case errors.Is(err, store.ErrConflict):
			rec.Outcome = "retried" // a concurrent change came first
		case errors.Is(err, store.ErrUnavailable):
			rec.Outcome = "unknown" // etcd may have applied a write it timed out on
		}
		s.audit.Record(ctx, rec)
		return err
	}
	c.recorded = true
	s.names.touched(ctx, ops)
	return nil
}

func joinDetail(parts ...string) string {
	parts = slices.DeleteFunc(parts, func(p string) bool { return p == "" })
	return strings.Join(parts, "; ")
}

// secretDiff names what a change did to the fields the policy reads (who
// may see it, whether it goes away), before → after. nil after: deleted.
func secretDiff(before, after *Secret) string {
	if after == nil {
		return "deleted (project " + before.Project + ")"
	}
	if before == nil {
		before = &Secret{}
	}
	// Built without fmt, on the stack (a create's diff fits): a create and
	// every secret change pass here.
	var buf [256]byte
	d := buf[:0]
	add := func(name, b, a string) {
		if b == a {
			return
		}
		if len(d) > 0 {
			d = append(d, "; "...)
		}
		d = append(append(append(append(append(d, name...), ": "...), b...), " → "...), a...)
	}
	add("state", string(before.State), string(after.State))
	add("deletion_policy", string(before.EffectivePolicy()), string(after.EffectivePolicy()))
	add("acl", aclString(before.ACL), aclString(after.ACL))
	add("consumers", strconv.Itoa(len(before.Consumers)), strconv.Itoa(len(after.Consumers)))
	add("payload", strconv.FormatBool(before.HasPayload), strconv.FormatBool(after.HasPayload))
	if before.Name != after.Name {
		add("name", strconv.Quote(before.Name), strconv.Quote(after.Name))
	}
	add("metadata", sortedKeys(before.Metadata), sortedKeys(after.Metadata))
	add("attributes", sortedKeys(before.Attributes), sortedKeys(after.Attributes))
	add("expiration", timeString(before.Expiration), timeString(after.Expiration))
	return string(d)
}

func aclString(a *ACL) string {
	if a == nil {
		return "project-access"
	}
	access := "project-access"
	if !a.ProjectAccess {
		access = "private"
	}
	return access + " users=" + strings.Join(a.Users, ",") + "@" + a.Source
}

func sortedKeys(m map[string]string) string {
	switch len(m) {
	case 0:
		return "[]"
	case 1: // a KMIP object's attributes, often
		for k := range m {
			return "[" + k + "]"
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return "[" + strings.Join(keys, ",") + "]"
}

func timeString(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// writeErr is a failed write as callers see it: our own errors (the audit
// trail down) as they are, a store failure as an internal error.
func writeErr(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return internal("write", err)
}
