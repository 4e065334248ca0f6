package kms

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// Containers are Barbican's named groups of secrets: generic, rsa and
// certificate. A container holds references only, never key material, and
// the consumers ({name, URL}) that use it, and a read ACL like a secret's
// (container_acl.go): a private container is the business of its creator,
// the project's admins and the users its ACL names.
//
// Store layout: keys.go.
//
// Every change is one transaction with compare-and-swap on the record. A
// create also compares the versions of the secrets it names, so a secret
// deleted during the create cannot end up in the new container. A secret
// deleted later leaves every container that names it, as in Barbican
// (deleting a secret deletes its container_secret rows): reads drop the
// refs of secrets that no longer exist.

// Container authorization, Barbican's legacy policy (roles scoped to the
// caller's project, as for secrets, policy.go):
//
//   - create: admin or creator (containers:post);
//   - list: admin, observer or creator (containers:get), and a listing
//     shows only the containers the caller may read, as for secrets;
//   - read, and use its consumers: any role in its project unless the ACL
//     makes it private; the project admin, the creator-owner (creator role)
//     and the users the ACL names always (container:get). Reading a
//     container grants nothing on the secrets it names;
//   - add or remove a secret ref: the project admin, the creator-owner, or
//     a creator of the project while the container is not private
//     (container_secret:post, container_secret:delete);
//   - delete, change the ACL: the project admin or the creator-owner
//     (container:delete; container_acls:put_patch and :delete, read as
//     secret ACLs are here, ActACL: Barbican's legacy rules also admit
//     any creator of the project, as its ACL controllers leave
//     read_project_access out of the policy target);
//   - see the ACL: admin, observer or creator of its project
//     (container_acls:get).
//
// Services may use any container's consumers, as with secret consumers.

// secretMissing is Barbican's answer for a ref to a secret that is not in
// the caller's project.
func secretMissing(name string) error {
	return NotFound("Secret provided for '%s' doesn't exist.", name)
}

// CreateContainer stores a new container of the caller's project. Every
// secret must be a live secret of that project (else NotFound, as in
// Barbican) that the caller may read.
func (s *Service) CreateContainer(ctx context.Context, who Identity, req ContainerRequest) (c *Container, err error) {
	ctx = s.begin(ctx, who, "container_create")
	defer func() { s.recordDetail(ctx, who, "container_create", "", containerDetail(c), err) }()
	if err := who.Validate(); err != nil {
		return nil, err
	}
	if err := s.allowProject(ContainerCreate, who); err != nil {
		return nil, err
	}
	if err := validateContainer(&req); err != nil {
		return nil, err
	}
	hold, err := s.holdQuota(ctx, who.Project, usage{qContainers: 1})
	if err != nil {
		return nil, err
	}
	defer func() { hold.release(err == nil) }()
	now := s.clock()
	c = &Container{
		ID: newSecretID(), Project: who.Project, Creator: who.User, CreatorSource: who.Source, Name: req.Name, Type: req.Type,
		Secrets: slices.Clone(req.Secrets), Created: now, Updated: now,
	}
	b, err := s.encodeTagged(ctx, c.Project, "container:"+c.ID, 1, c)
	if err != nil {
		return nil, err
	}
	key, ptr := containerKey(c.Project, c.ID), containerPointerKey(c.ID)
	ops := []store.Op{store.Put(key, b), store.Put(ptr, []byte(c.Project))}
	busy := Conflict("the secrets of the container are being changed concurrently; try again")
	err = s.mutate(ctx, "", busy, func() (edit, error) {
		// A named secret changed meanwhile: a conflict checks them again.
		cmps, err := s.containerSecretsCmps(ctx, who, c.Secrets)
		if err != nil {
			return edit{}, err
		}
		return edit{detail: "container " + c.ID, cmps: append(cmps, store.Cmp{Key: ptr}), ops: ops}, nil
	})
	if err != nil {
		return nil, err
	}
	return c.clone(), nil
}

// containerSecretsCmps checks every ref and returns comparisons that hold
// while the secrets stay as read.
func (s *Service) containerSecretsCmps(ctx context.Context, who Identity, refs []ContainerSecret) ([]store.Cmp, error) {
	cmps := make([]store.Cmp, 0, len(refs)+1)
	for _, ref := range refs {
		l, ok, err := s.liveSecretOf(ctx, who.Project, ref.SecretID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, secretMissing(ref.Name)
		}
		if err := s.allowSecret(SecretRead, who, l.rec.Secret); err != nil {
			return nil, err
		}
		cmps = append(cmps, store.Cmp{Key: recordKey(l.rec.Project, l.rec.ID), Version: l.version})
	}
	return cmps, nil
}

// liveSecretOf loads the secret id when it is a live secret of project
// (neither destroyed nor expired); ok is false when it is not.
func (s *Service) liveSecretOf(ctx context.Context, project, id string) (l loaded, ok bool, err error) {
	if uuid.Validate(id) != nil {
		return loaded{}, false, nil
	}
	l, err = s.load(ctx, id)
	if KindOf(err) == KindNotFound {
		return loaded{}, false, nil
	} else if err != nil {
		return loaded{}, false, err
	}
	sec := l.rec.Secret
	if sec.Project != project || sec.State == Destroyed || sec.Expired(s.now()) {
		return loaded{}, false, nil
	}
	return l, true, nil
}

// loadContainer reads a container and the version it was read at.
func (s *Service) loadContainer(ctx context.Context, id string) (*Container, int64, error) {
	notFound := NotFound("Secrets container not found.")
	if uuid.Validate(id) != nil {
		return nil, 0, notFound
	}
	kv, err := s.st.Get(ctx, containerPointerKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, notFound
	} else if err != nil {
		return nil, 0, internal("read", err)
	}
	project := string(kv.Value)
	kv, err = s.st.Get(ctx, containerKey(project, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, notFound
	} else if err != nil {
		return nil, 0, internal("read", err)
	}
	c, err := s.openContainer(ctx, project, id, kv)
	if err != nil {
		return nil, 0, err
	}
	return c, kv.Version, nil
}

// live drops the refs of secrets deleted since the container was made
// (destroyed KMIP objects included: Barbican clients cannot see them).
// Expired secrets stay, as Barbican keeps them in their containers.
func (s *Service) live(ctx context.Context, c *Container) (*Container, error) {
	out := c.clone()
	out.Secrets = out.Secrets[:0]
	for _, ref := range c.Secrets {
		l, err := s.load(ctx, ref.SecretID)
		if KindOf(err) == KindNotFound {
			continue
		} else if err != nil {
			return nil, err
		}
		if l.rec.State != Destroyed && l.rec.Project == c.Project {
			out.Secrets = append(out.Secrets, ref)
		}
	}
	return out, nil
}

// GetContainer returns a container; another project's is Forbidden.
func (s *Service) GetContainer(ctx context.Context, who Identity, id string) (*Container, error) {
	if err := who.Validate(); err != nil {
		return nil, err
	}
	c, _, err := s.loadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.allowContainer(ContainerRead, who, c); err != nil {
		return nil, err
	}
	return s.live(ctx, c)
}

// ContainerQuery filters and pages a project's containers. Zero fields do
// not filter.
type ContainerQuery struct {
	Name          string // substring, case-insensitive, as the secrets list
	Type          ContainerType
	Offset, Limit int // Limit <= 0: all
}

// ListContainers returns one page of the caller's project's containers
// that the caller may read, oldest first, and how many match. (Barbican
// lists private containers to the whole project; a listing here shows
// what a GET would, as the secrets listing does.)
func (s *Service) ListContainers(ctx context.Context, who Identity, q ContainerQuery) ([]*Container, int, error) {
	if err := who.Validate(); err != nil {
		return nil, 0, err
	}
	if err := s.allowProject(ContainerList, who); err != nil {
		return nil, 0, err
	}
	kvs, err := s.st.List(ctx, containerPrefix(who.Project), "", 0)
	if err != nil {
		return nil, 0, internal("list", err)
	}
	var all []*Container
	prefix := containerPrefix(who.Project)
	for _, kv := range kvs {
		c, err := s.openContainer(ctx, who.Project, kv.Key[len(prefix):], kv)
		if errors.Is(err, crypto.ErrTampered) {
			continue // audited; an edited container is not listed
		} else if err != nil {
			return nil, 0, err
		}
		if containsFold(c.Name, q.Name) && (q.Type == "" || c.Type == q.Type) && s.allowContainer(ContainerRead, who, c) == nil {
			all = append(all, c)
		}
	}
	slices.SortStableFunc(all, func(a, b *Container) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	total := len(all)
	page := all[min(max(q.Offset, 0), len(all)):]
	if q.Limit > 0 && len(page) > q.Limit {
		page = page[:q.Limit]
	}
	out := make([]*Container, 0, len(page))
	for _, c := range page {
		lc, err := s.live(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, lc)
	}
	return out, total, nil
}

// DeleteContainer removes a container with its consumers: Barbican deletes
// a container in use too (its consumers go with it).
func (s *Service) DeleteContainer(ctx context.Context, who Identity, id string) (err error) {
	ctx = s.begin(ctx, who, "container_delete")
	defer func() { s.recordDetail(ctx, who, "container_delete", "", "container "+id, err) }()
	if err := who.Validate(); err != nil {
		return err
	}
	return s.mutate(ctx, id, containerBusy(id), func() (edit, error) {
		c, version, err := s.loadContainer(ctx, id)
		if err != nil {
			return edit{}, err
		}
		if err := s.allowContainer(ContainerDelete, who, c); err != nil {
			return edit{}, err
		}
		e := removal(containerKey(c.Project, id), version, containerPointerKey(id), c.Project,
			usage{qContainers: 1, qConsumers: len(c.Consumers)})
		e.detail = "container " + id
		return e, nil
	})
}

func containerBusy(id string) error {
	return Conflict("container %s is being changed concurrently; try again", id)
}

// updateContainer applies fn to the current container and writes it back
// with compare-and-swap, retrying on a concurrent change. fn returning
// errUnchanged ends without a write; the container is returned as read.
func (s *Service) updateContainer(ctx context.Context, id string, fn func(c *Container) error) (*Container, error) {
	return s.updateContainerIf(ctx, id, func(c *Container) ([]store.Cmp, error) { return nil, fn(c) })
}

// updateContainerIf is updateContainer whose fn also returns comparisons
// the write depends on (the versions of the secrets it checked). The
// consumers quota a removal gives back follows the commit.
func (s *Service) updateContainerIf(ctx context.Context, id string, fn func(c *Container) ([]store.Cmp, error)) (*Container, error) {
	var c *Container
	err := s.mutate(ctx, id, containerBusy(id), func() (edit, error) {
		cur, version, err := s.loadContainer(ctx, id)
		if err != nil {
			return edit{}, err
		}
		c = cur
		had := len(c.Consumers)
		cmps, err := fn(c)
		if err != nil {
			return edit{}, err
		}
		c.Updated = s.clock() // a change touches the container, as Barbican's consumer changes do
		b, err := s.encodeTagged(ctx, c.Project, "container:"+id, version+1, c)
		if err != nil {
			return edit{}, err
		}
		key := containerKey(c.Project, id)
		return edit{
			detail: "container " + id,
			cmps:   append(cmps, store.Cmp{Key: key, Version: version}),
			ops:    []store.Op{store.Put(key, b)},
			after:  settle{project: c.Project, freed: consumersFreed(had, len(c.Consumers))},
		}, nil
	})
	if errors.Is(err, errUnchanged) {
		return c, nil // as read
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Secret refs of an existing container: Barbican's
// /v1/containers/{id}/secrets, for generic containers only (its API
// reference says so of both; its code refuses only the add, but a typed
// container losing a required ref would no longer be what a create
// allows).

// containerSecretDetail names a container and one of its refs in the
// audit trail; a ref that names no secret is not copied there.
func containerSecretDetail(id string, ref ContainerSecret) string {
	if uuid.Validate(ref.SecretID) != nil {
		return "container " + id + " secret (invalid)"
	}
	return "container " + id + " secret " + ref.SecretID
}

func onlyGeneric(c *Container) error {
	if c.Type != ContainerGeneric {
		return Invalid("Only 'generic' containers can be modified.")
	}
	return nil
}

// AddContainerSecret adds a named ref to a generic container. The secret
// must be a live secret of the container's project that the caller may
// read, as for a create, and the container keeps what a create
// guarantees: unique names, unique secrets, at most MaxContainerSecrets.
// Barbican answers 409 to a ref the container already holds; so does a
// name or a secret already there under another ref.
func (s *Service) AddContainerSecret(ctx context.Context, who Identity, id string, ref ContainerSecret) (c *Container, err error) {
	ctx = s.beginDetail(ctx, who, "container_secret_add", containerSecretDetail(id, ref))
	defer func() { s.recordDetail(ctx, who, "container_secret_add", "", containerSecretDetail(id, ref), err) }()
	if err := who.Validate(); err != nil {
		return nil, err
	}
	if len(ref.Name) > maxContainerName {
		return nil, InvalidField("ContainerSecret", "name", "name is longer than %d characters", maxContainerName)
	}
	return s.updateContainerIf(ctx, id, func(cur *Container) ([]store.Cmp, error) {
		if err := s.allowContainer(ContainerSecretChange, who, cur); err != nil {
			return nil, err
		}
		if err := onlyGeneric(cur); err != nil {
			return nil, err
		}
		cmps, err := s.containerSecretsCmps(ctx, who, []ContainerSecret{ref})
		if KindOf(err) == KindNotFound {
			return nil, NotFound("Secret provided doesn't exist.")
		} else if err != nil {
			return nil, err
		}
		lc, err := s.live(ctx, cur) // the refs of deleted secrets are gone
		if err != nil {
			return nil, err
		}
		cur.Secrets = lc.Secrets
		for _, have := range cur.Secrets {
			switch {
			case have == ref:
				return nil, Conflict("Conflict. A secret with that name and ID is already stored in this container. " +
					"The same secret can exist in a container as long as the name is unique.")
			case have.Name == ref.Name && ref.Name == "":
				return nil, Conflict("Conflict. An unnamed secret is already stored in this container.")
			case have.Name == ref.Name:
				return nil, Conflict("Conflict. A secret named '%s' is already stored in this container.", ref.Name)
			case have.SecretID == ref.SecretID:
				return nil, Conflict("Conflict. That secret is already stored in this container as '%s'.", have.Name)
			}
		}
		if len(cur.Secrets) >= MaxContainerSecrets {
			return nil, Invalid("a container holds at most %d secrets", MaxContainerSecrets)
		}
		cur.Secrets = append(cur.Secrets, ref)
		return cmps, nil
	})
}

// RemoveContainerSecret removes a ref, name and secret both matching, from
// a generic container. Barbican answers 404 when the secret is not a live
// secret of the project, then when the container does not hold the ref;
// here a ref to an expired secret may still be removed (Barbican, whose
// lookups skip expired secrets, keeps it for good).
func (s *Service) RemoveContainerSecret(ctx context.Context, who Identity, id string, ref ContainerSecret) (c *Container, err error) {
	ctx = s.beginDetail(ctx, who, "container_secret_remove", containerSecretDetail(id, ref))
	defer func() { s.recordDetail(ctx, who, "container_secret_remove", "", containerSecretDetail(id, ref), err) }()
	if err := who.Validate(); err != nil {
		return nil, err
	}
	return s.updateContainer(ctx, id, func(cur *Container) error {
		if err := s.allowContainer(ContainerSecretChange, who, cur); err != nil {
			return err
		}
		if err := onlyGeneric(cur); err != nil {
			return err
		}
		lc, err := s.live(ctx, cur)
		if err != nil {
			return err
		}
		i := slices.Index(lc.Secrets, ref)
		if i < 0 {
			if _, ok, err := s.liveSecretOf(ctx, cur.Project, ref.SecretID); err != nil {
				return err
			} else if !ok {
				return NotFound("Secret '%s' with id '%s' doesn't exist.", ref.Name, ref.SecretID)
			}
			return NotFound("Secret provided is not in the container")
		}
		cur.Secrets = slices.Delete(lc.Secrets, i, i+1)
		return nil
	})
}
