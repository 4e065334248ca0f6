package kms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/keywarden/keywarden/kms/store"
)

// EffectiveQuotas returns the caller's project's quotas: its configured
// values over the defaults, every kind present.
func (s *Service) EffectiveQuotas(ctx context.Context, who Identity) (Quotas, error) {
	if err := who.Validate(); err != nil {
		return nil, err
	}
	if err := s.allowProject(QuotaRead, who); err != nil {
		return nil, err
	}
	pq, err := s.loadProjectQuotas(ctx, who.Project)
	if err != nil && KindOf(err) != KindNotFound {
		return nil, err
	}
	var configured Quotas
	if pq != nil {
		configured = pq.Quotas
	}
	return s.quotas.effective(configured), nil
}

func validQuotaProject(project string) error {
	if !validProject(project) {
		return Invalid("invalid project %q", project)
	}
	return nil
}

func (s *Service) loadProjectQuotas(ctx context.Context, project string) (*ProjectQuotas, error) {
	kv, err := s.st.Get(ctx, quotaKey(project))
	if errors.Is(err, store.ErrNotFound) {
		return nil, NotFound("Project quotas not found.")
	} else if err != nil {
		return nil, internal("read", err)
	}
	pq := &ProjectQuotas{}
	if err := json.Unmarshal(kv.Value, pq); err != nil {
		return nil, internal("decode", err)
	}
	return pq, nil
}

// GetProjectQuotas returns a project's configured quotas (service admins);
// NotFound when it has none.
func (s *Service) GetProjectQuotas(ctx context.Context, who Identity, project string) (*ProjectQuotas, error) {
	if err := s.Allows(ProjectQuotaAdmin, who); err != nil {
		return nil, err
	}
	if err := validQuotaProject(project); err != nil {
		return nil, NotFound("Project quotas not found.")
	}
	return s.loadProjectQuotas(ctx, project)
}

func (s *Service) allProjectQuotas(ctx context.Context) ([]*ProjectQuotas, error) {
	kvs, err := s.st.List(ctx, quotaPrefix(), "", 0)
	if err != nil {
		return nil, internal("list", err)
	}
	out := make([]*ProjectQuotas, 0, len(kvs))
	for _, kv := range kvs {
		pq := &ProjectQuotas{}
		if err := json.Unmarshal(kv.Value, pq); err != nil {
			return nil, internal("decode", err)
		}
		if pq.Project == "" {
			pq.Project = quotaProject(kv.Key)
		}
		out = append(out, pq)
	}
	return out, nil
}

// ListProjectQuotas returns one page of the configured project quotas,
// oldest configuration first (Barbican's order), and how many there are
// (service admins).
func (s *Service) ListProjectQuotas(ctx context.Context, who Identity, offset, limit int) ([]*ProjectQuotas, int, error) {
	if err := s.Allows(ProjectQuotaAdmin, who); err != nil {
		return nil, 0, err
	}
	all, err := s.allProjectQuotas(ctx)
	if err != nil {
		return nil, 0, err
	}
	slices.SortStableFunc(all, func(a, b *ProjectQuotas) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Project, b.Project)
	})
	total := len(all)
	all = all[min(max(offset, 0), len(all)):]
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all, total, nil
}

// SetProjectQuotas configures a project's quotas (service admins),
// replacing any earlier configuration: kinds not given follow the
// defaults. Negative values are stored as Unlimited.
func (s *Service) SetProjectQuotas(ctx context.Context, who Identity, project string, q Quotas) (err error) {
	ctx = s.begin(ctx, who, "quota_set")
	defer func() { s.recordDetail(ctx, who, "quota_set", "", quotaDetail(project, q), err) }()
	if err := s.Allows(ProjectQuotaAdmin, who); err != nil {
		return err
	}
	if err := validQuotaProject(project); err != nil {
		return err
	}
	q, err = q.normalize()
	if err != nil {
		return err
	}
	key := quotaKey(project)
	return s.mutate(ctx, "", quotasBusy(project), func() (edit, error) {
		now := s.clock()
		pq := &ProjectQuotas{Project: project, Quotas: q, Created: now, Updated: now}
		var version int64
		kv, err := s.st.Get(ctx, key)
		switch {
		case err == nil:
			old := &ProjectQuotas{}
			if json.Unmarshal(kv.Value, old) == nil && !old.Created.IsZero() {
				pq.Created = old.Created
			}
			version = kv.Version
		case !errors.Is(err, store.ErrNotFound):
			return edit{}, internal("read", err)
		}
		b, err := json.Marshal(pq)
		if err != nil {
			return edit{}, internal("encode", err)
		}
		return edit{
			detail: quotaDetail(project, q),
			cmps:   []store.Cmp{{Key: key, Version: version}}, ops: []store.Op{store.Put(key, b)},
			after: settle{then: func() { s.setSnapshotProject(ctx, project, q) }},
		}, nil
	})
}

func quotasBusy(project string) error {
	return Conflict("the quotas of project %s are being changed concurrently; try again", project)
}

// DeleteProjectQuotas removes a project's configuration (service admins):
// the defaults apply again. NotFound when it has none.
func (s *Service) DeleteProjectQuotas(ctx context.Context, who Identity, project string) (err error) {
	ctx = s.begin(ctx, who, "quota_delete")
	defer func() { s.recordDetail(ctx, who, "quota_delete", "", "project "+project, err) }()
	if err := s.Allows(ProjectQuotaAdmin, who); err != nil {
		return err
	}
	if err := validQuotaProject(project); err != nil {
		return NotFound("Project quotas not found.")
	}
	key := quotaKey(project)
	return s.mutate(ctx, "", quotasBusy(project), func() (edit, error) {
		kv, err := s.st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return edit{}, NotFound("Project quotas not found.")
		} else if err != nil {
			return edit{}, internal("read", err)
		}
		return edit{
			detail: "project " + project,
			cmps:   []store.Cmp{{Key: key, Version: kv.Version}}, ops: []store.Op{store.Delete(key)},
			after: settle{then: func() { s.setSnapshotProject(ctx, project, nil) }},
		}, nil
	})
}
