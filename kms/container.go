package kms

import (
	"slices"
	"strings"
	"time"
)

// A container's model and the validation of a create (containers.go has
// the Service operations).

// ContainerType is what a container groups.
type ContainerType string

const (
	ContainerGeneric     ContainerType = "generic"
	ContainerRSA         ContainerType = "rsa"
	ContainerCertificate ContainerType = "certificate"
)

// containerTypes are Barbican's types, in the order its schema lists them.
var containerTypes = []ContainerType{ContainerGeneric, ContainerRSA, ContainerCertificate}

// typedNames are the ref names a typed container allows and requires
// (Barbican's ContainerValidator); generic containers take any names.
var typedNames = map[ContainerType]struct{ allowed, required []string }{
	ContainerRSA: {
		allowed:  []string{"private_key", "public_key", "private_key_passphrase"},
		required: []string{"public_key", "private_key"},
	},
	ContainerCertificate: {
		allowed:  []string{"certificate", "private_key", "private_key_passphrase", "intermediates"},
		required: []string{"certificate"},
	},
}

// Limits that keep a container record small. Barbican has none; its
// columns bound the strings.
const (
	MaxContainerSecrets   = 100
	MaxContainerConsumers = 1000
	maxContainerName      = MaxNameLen
	maxConsumerName       = 36
	maxConsumerURL        = 255
)

// ContainerSecret is one named ref of a container. Name may be empty
// (Barbican allows unnamed refs in generic containers).
type ContainerSecret struct {
	Name     string `json:"name,omitempty"`
	SecretID string `json:"secret_id"`
}

// ContainerConsumer is a service resource using a container (Octavia's
// load balancer using a certificate container).
type ContainerConsumer struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Project registered the consumer: it may remove it even when it
	// does not own the container (Barbican's rule).
	Project string    `json:"project,omitempty"`
	Created time.Time `json:"created"`
}

// same: a consumer is its name and URL.
func (c ContainerConsumer) same(o ContainerConsumer) bool { return c.Name == o.Name && c.URL == o.URL }

// Container is a stored container.
type Container struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	Creator string `json:"creator,omitempty"`

	CreatorSource string `json:"creator_source,omitempty"` // as Secret's

	Name      string              `json:"name,omitempty"`
	Type      ContainerType       `json:"type"`
	Secrets   []ContainerSecret   `json:"secrets,omitempty"`
	Consumers []ContainerConsumer `json:"consumers,omitempty"`
	ACL       *ACL                `json:"acl,omitempty"`
	Created   time.Time           `json:"created"`
	Updated   time.Time           `json:"updated"`
}

// clone copies the slices, so a caller may change the copy.
func (c *Container) clone() *Container {
	out := *c
	out.Secrets = slices.Clone(c.Secrets)
	out.Consumers = slices.Clone(c.Consumers)
	if c.ACL != nil {
		acl := c.ACL.view()
		out.ACL = &acl
	}
	return &out
}

// ContainerRequest describes a new container.
type ContainerRequest struct {
	Name    string
	Type    ContainerType
	Secrets []ContainerSecret
}

// containerInvalid refuses one property of a container request.
func containerInvalid(property, format string, args ...any) error {
	return InvalidField("Container", property, format, args...)
}

// validateContainer applies Barbican's ContainerValidator: a known type;
// unique names and unique secrets; typed containers take only their names
// and need the required ones. As there, an empty list skips the name rules.
func validateContainer(req *ContainerRequest) error {
	if !slices.Contains(containerTypes, req.Type) {
		return containerInvalid("type", "'%s' is not one of ['generic', 'rsa', 'certificate']", req.Type)
	}
	if len(req.Name) > maxContainerName {
		return containerInvalid("name", "name is longer than %d characters", maxContainerName)
	}
	if len(req.Secrets) == 0 {
		return nil
	}
	if len(req.Secrets) > MaxContainerSecrets {
		return containerInvalid("secret_refs", "a container holds at most %d secrets", MaxContainerSecrets)
	}
	names := make(map[string]bool, len(req.Secrets))
	ids := make(map[string]bool, len(req.Secrets))
	for _, ref := range req.Secrets {
		if len(ref.Name) > maxContainerName {
			return containerInvalid("secret_refs", "secret name is longer than %d characters", maxContainerName)
		}
		names[ref.Name] = true
		ids[ref.SecretID] = true
	}
	if len(names) != len(req.Secrets) {
		return containerInvalid("secret_refs", "Duplicate reference names are not allowed")
	}
	if len(ids) != len(req.Secrets) {
		return containerInvalid("secret_refs", "Duplicate secret ids are not allowed")
	}
	rule, typed := typedNames[req.Type]
	if !typed {
		return nil
	}
	for name := range names {
		if !slices.Contains(rule.allowed, name) {
			return containerInvalid("secret_refs", "only %s reference names are allowed for %s type",
				quoted(rule.allowed), req.Type)
		}
	}
	for _, name := range rule.required {
		if !names[name] {
			return containerInvalid("secret_refs", "The minimum required reference names are %s for %s type",
				quoted(rule.required), req.Type)
		}
	}
	return nil
}

func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return strings.Join(q, ", ")
}
