package kms

import (
	"context"
	"slices"
	"strings"
	"unicode"
)

// Container consumers: Barbican's {name, URL} registrations on a
// container, kept inside the container's record.

// validateContainerConsumer checks Barbican's column widths; control
// characters are refused because names end up in logs.
func validateContainerConsumer(c ContainerConsumer) error {
	for _, f := range []struct {
		name, v string
		max     int
	}{{"name", c.Name, maxConsumerName}, {"URL", c.URL, maxConsumerURL}} {
		if f.v == "" {
			return Invalid("'%s' is a required property", f.name)
		}
		if len(f.v) > f.max {
			return Invalid("consumer %s is longer than %d characters", f.name, f.max)
		}
		if strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			return Invalid("consumer %s contains control characters", f.name)
		}
	}
	return nil
}

// AddContainerConsumer registers c on the container; registering it again
// changes nothing (idempotent). It returns the container. The consumer
// counts against the consumers quota of the container's project, as a
// secret consumer counts against its secret's.
func (s *Service) AddContainerConsumer(ctx context.Context, who Identity, id string, c ContainerConsumer) (out *Container, err error) {
	ctx = s.begin(ctx, who, "container_consumer_add")
	defer func() { s.recordDetail(ctx, who, "container_consumer_add", "", "container "+id, err) }()
	if err := who.Validate(); err != nil {
		return nil, err
	}
	if err := validateContainerConsumer(c); err != nil {
		return nil, err
	}
	c.Project, c.Created = who.Project, s.clock()
	added := false
	var hold quotaHold
	defer func() { hold.release(err == nil && added) }()
	out, err = s.updateContainer(ctx, id, func(cur *Container) error {
		added = false
		if err := s.allowContainer(ContainerConsumerUse, who, cur); err != nil {
			return err
		}
		if slices.ContainsFunc(cur.Consumers, c.same) {
			return errUnchanged
		}
		if len(cur.Consumers) >= MaxContainerConsumers {
			return Invalid("a container can have at most %d consumers", MaxContainerConsumers)
		}
		if hold.pc == nil {
			var err error
			if hold, err = s.holdQuota(ctx, cur.Project, usage{qConsumers: 1}); err != nil {
				return err
			}
		}
		cur.Consumers = append(cur.Consumers, c)
		added = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.live(ctx, out)
}

// RemoveContainerConsumer unregisters c; removing an absent consumer
// changes nothing (idempotent). The project that registered the consumer,
// the container's project or a service may remove it (Barbican's rule).
func (s *Service) RemoveContainerConsumer(ctx context.Context, who Identity, id string, c ContainerConsumer) (out *Container, err error) {
	ctx = s.begin(ctx, who, "container_consumer_remove")
	defer func() { s.recordDetail(ctx, who, "container_consumer_remove", "", "container "+id, err) }()
	if err := who.Validate(); err != nil {
		return nil, err
	}
	if err := validateContainerConsumer(c); err != nil {
		return nil, err
	}
	out, err = s.updateContainer(ctx, id, func(cur *Container) error {
		if err := s.allowContainer(ContainerConsumerUse, who, cur); err != nil {
			return err
		}
		i := slices.IndexFunc(cur.Consumers, c.same)
		if i < 0 {
			return errUnchanged
		}
		reg := cur.Consumers[i]
		if who.Project != cur.Project && reg.Project != who.Project {
			return Forbidden("Not Allowed. Sorry, only the creator of a consumer can delete it.")
		}
		cur.Consumers = slices.Delete(cur.Consumers, i, i+1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.live(ctx, out)
}

// ListContainerConsumers returns one page of the container's consumers,
// oldest first, and how many it has.
func (s *Service) ListContainerConsumers(ctx context.Context, who Identity, id string, offset, limit int) ([]ContainerConsumer, int, error) {
	if err := who.Validate(); err != nil {
		return nil, 0, err
	}
	c, _, err := s.loadContainer(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if err := s.allowContainer(ContainerConsumerRead, who, c); err != nil {
		return nil, 0, err
	}
	cs := c.Consumers[min(max(offset, 0), len(c.Consumers)):]
	if limit > 0 && len(cs) > limit {
		cs = cs[:limit]
	}
	return slices.Clone(cs), len(c.Consumers), nil
}
