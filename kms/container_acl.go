package kms

import "context"

// Container ACLs: Barbican's /v1/containers/{id}/acl, the read ACL of a
// secret (acl.go) kept in the container's record. Who it lets read the
// container is the policy's (container:get); it opens nothing of
// the secrets the container names, each of which keeps its own rules.
// Barbican's acl_only listing is of secrets only, so containers have no
// entry in the ACL index (a/<user>/<id>).

// GetContainerACL returns the container's read ACL; a container without
// one has project access and no users.
func (s *Service) GetContainerACL(ctx context.Context, who Identity, id string) (ACL, error) {
	if err := who.Validate(); err != nil {
		return ACL{}, err
	}
	c, _, err := s.loadContainer(ctx, id)
	if err != nil {
		return ACL{}, err
	}
	if err := s.allowContainer(ContainerACLRead, who, c); err != nil {
		return ACL{}, err
	}
	return c.ACL.view(), nil
}

// SetContainerACL replaces or merges the read ACL, as SetACL a secret's.
func (s *Service) SetContainerACL(ctx context.Context, who Identity, id string, ch ACLChange) (acl ACL, err error) {
	ctx = s.begin(ctx, who, "container_acl_set")
	defer func() { s.recordDetail(ctx, who, "container_acl_set", "", "container "+id, err) }()
	c, err := s.changeContainerACL(ctx, who, id, func(c *Container) { c.ACL = ch.apply(who, c.ACL, s.clock()) })
	if err != nil {
		return ACL{}, err
	}
	return c.ACL.view(), nil
}

// DeleteContainerACL removes the ACL: back to project access, no users.
func (s *Service) DeleteContainerACL(ctx context.Context, who Identity, id string) (err error) {
	ctx = s.begin(ctx, who, "container_acl_delete")
	defer func() { s.recordDetail(ctx, who, "container_acl_delete", "", "container "+id, err) }()
	_, err = s.changeContainerACL(ctx, who, id, func(c *Container) { c.ACL = nil })
	return err
}

func (s *Service) changeContainerACL(ctx context.Context, who Identity, id string, change func(c *Container)) (*Container, error) {
	if err := who.Validate(); err != nil {
		return nil, err
	}
	return s.updateContainer(ctx, id, func(c *Container) error {
		if err := s.allowContainer(ContainerACLChange, who, c); err != nil {
			return err
		}
		change(c)
		return nil
	})
}
