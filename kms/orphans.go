package kms

import (
	"context"
	"errors"
	"time"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/crypto"
)

// Orphans are secrets nobody uses and whose policy (or age) says they should
// be gone: an on_last_consumer secret whose consumer was never registered
// (the caller crashed between order and attach), or, when asked, any secret
// without consumers left untouched for long. Finding and collecting them is
// an operator's job across all projects: FindOrphans and CollectOrphans take
// no Identity and serve the server's own schedule and the offline CLI; the
// adapters go through Orphans, which admits key-manager:service-admin only.

// Orphan is one secret found, and why it counts.
type Orphan struct {
	Secret *Secret
	Reason string
}

// orphanCollector is the identity the audit trail shows for the server's
// own schedule and the offline CLI.
var orphanCollector = Identity{Project: "keywarden", User: "keywarden:orphans", Source: "local",
	Roles: []string{RoleServiceAdmin}}

// DefaultOrphanMinAge is the default floor of an orphan rule's idle time.
const DefaultOrphanMinAge = time.Hour

// checkRule refuses a rule that would count secrets idle for less than the
// configured floor: a caller between order and attach needs its moment.
func (s *Service) checkRule(rule consumers.OrphanRule) error {
	if rule.MinIdle() < s.orphanMinAge {
		return Invalid("orphans must have been idle at least %s (orphans.min_age); grace %s and older_than %s ask for less",
			s.orphanMinAge, rule.Grace, rule.OlderThan)
	}
	return nil
}

// scanPage bounds the records one store read returns.
const scanPage = 512

// FindOrphans lists every project's orphans under rule. Destroyed (KMIP)
// records hold no material and are not listed.
func (s *Service) FindOrphans(ctx context.Context, rule consumers.OrphanRule) ([]Orphan, error) {
	if err := s.checkRule(rule); err != nil {
		return nil, err
	}
	var out []Orphan
	now := s.now()
	after := ""
	for {
		kvs, err := s.st.List(ctx, recordsPrefix(), after, scanPage)
		if err != nil {
			return nil, internal("list", err)
		}
		for _, kv := range kvs {
			project, id, ok := splitRecordKey(kv.Key)
			if !ok {
				continue
			}
			r, err := s.openRecord(ctx, project, id, kv)
			if errors.Is(err, crypto.ErrTampered) {
				continue // audited; never destroyed on what an edit says
			} else if err != nil {
				return nil, err
			}
			r = s.dueActivation(r)
			if ok, why := orphan(r.Secret, rule, now); ok {
				out = append(out, Orphan{Secret: r.Secret, Reason: why})
			}
		}
		if len(kvs) < scanPage {
			return out, nil
		}
		after = kvs[len(kvs)-1].Key[len(recordsPrefix()):] + "\x00"
	}
}

// orphan applies the rule; idleness counts from the last change, which
// includes the removal of the last consumer.
func orphan(sec *Secret, rule consumers.OrphanRule, now time.Time) (bool, string) {
	if sec.State == Destroyed {
		return false, ""
	}
	return rule.Orphan(sec.EffectivePolicy(), len(sec.Consumers), now.Sub(sec.Updated))
}

// errNotOrphan skips a secret that stopped being an orphan since the scan.
var errNotOrphan = errors.New("no longer an orphan")

// CollectOrphans deletes the given orphans, each only if it is still an
// orphan under rule when deleted (a consumer added since the scan saves
// it). It returns the ids deleted.
func (s *Service) CollectOrphans(ctx context.Context, rule consumers.OrphanRule, found []Orphan) ([]string, error) {
	if err := s.checkRule(rule); err != nil {
		return nil, err
	}
	return s.collectOrphans(ctx, orphanCollector, rule, found)
}

// Orphans lists every project's orphans under rule for an operator holding
// key-manager:service-admin and, with collect, destroys them as
// CollectOrphans does; destroyed lists the ids that went.
func (s *Service) Orphans(ctx context.Context, who Identity, rule consumers.OrphanRule, collect bool) (found []Orphan, destroyed []string, err error) {
	if err := who.Validate(); err != nil {
		return nil, nil, err
	}
	check := OrphanList
	if collect {
		check = OrphanDestroy
	}
	if err := s.allowProject(check, who); err != nil {
		return nil, nil, err
	}
	return s.sweepOrphans(ctx, who, rule, collect)
}

// SweepOrphans is Orphans for the server itself and the offline CLI: no
// caller to check, collections audited as keywarden:orphans.
func (s *Service) SweepOrphans(ctx context.Context, rule consumers.OrphanRule, collect bool) (found []Orphan, destroyed []string, err error) {
	return s.sweepOrphans(ctx, orphanCollector, rule, collect)
}

func (s *Service) sweepOrphans(ctx context.Context, by Identity, rule consumers.OrphanRule, collect bool) (found []Orphan, destroyed []string, err error) {
	if found, err = s.FindOrphans(ctx, rule); err != nil || !collect || len(found) == 0 {
		return found, nil, err
	}
	destroyed, err = s.collectOrphans(ctx, by, rule, found)
	return found, destroyed, err
}

func (s *Service) collectOrphans(ctx context.Context, by Identity, rule consumers.OrphanRule, found []Orphan) ([]string, error) {
	var deleted []string
	var errs []error
	for _, o := range found {
		id := o.Secret.ID
		_, err := s.update(s.begin(ctx, by, "orphan_delete"), id, anyState, func(r *record) error {
			if ok, _ := orphan(r.Secret, rule, s.now()); !ok {
				return errNotOrphan
			}
			return errDelete
		})
		switch {
		case errors.Is(err, errNotOrphan), KindOf(err) == KindNotFound:
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, id)
	}
	return deleted, errors.Join(errs...)
}
