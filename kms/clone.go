package kms

import (
	"context"
	"fmt"
	"maps"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/kms/store"
)

// Server-side clone: when an encrypted image becomes a volume, the image's
// secret is copied into a new secret the volume's owner controls. The
// material is re-sealed for the new id and project inside crypto and never
// leaves the server.

// CloneRequest describes the copy.
type CloneRequest struct {
	// Project owns the clone; empty: the caller's. Another project needs a
	// service role (Cinder acting for the volume's project).
	Project string
	// Name of the clone; nil: the source's.
	Name *string
	// Consumer, when set, is registered on the clone in the same write (the
	// new volume).
	Consumer *Consumer
	// DeletionPolicy of the clone (default retain); the source's is not
	// inherited: the clone has its own lifecycle.
	DeletionPolicy DeletionPolicy
	// Metadata is merged over the metadata copied from the source. Image
	// property names are understood: os_encrypt_key_id must name the source,
	// os_encrypt_key_deletion_policy sets DeletionPolicy, os_encrypt_format
	// the recorded format.
	Metadata map[string]string
}

// CloneSecret copies secret id into a new secret: same material, type,
// algorithm, size, mode, format and metadata; new id, owner project,
// creator, consumer and deletion policy; cloned_from names the source. The
// caller must be allowed to read the source's payload and to create in the
// target project. The copy is written only if the source is unchanged since
// it was read, so a clone never outlives a delete it raced with.
func (s *Service) CloneSecret(ctx context.Context, who Identity, id string, req CloneRequest) (sec *Secret, err error) {
	ctx = s.begin(ctx, who, "clone")
	defer func() { s.record(ctx, who, "clone", id, err) }()
	if err := who.Validate(); err != nil {
		return nil, err
	}
	project := req.Project
	if project == "" {
		project = who.Project
	}
	if err := (Identity{Project: project}).Validate(); err != nil {
		return nil, Invalid("invalid project %q", project)
	}
	if err := s.canCreateIn(SecretCreate, who, project); err != nil {
		return nil, err
	}
	if req.Name != nil && len(*req.Name) > MaxNameLen {
		return nil, Invalid("name is longer than %d characters", MaxNameLen)
	}
	if err := validateMetadata(req.Metadata); err != nil {
		return nil, err
	}
	props, err := consumers.ParseProperties(req.Metadata)
	if err != nil {
		return nil, consumerErr(err)
	}
	if props.KeyID != "" && props.KeyID != id {
		return nil, Invalid("%s %s does not name the secret being cloned (%s)", consumers.MetaKeyID, props.KeyID, id)
	}
	policy, err := consumers.ParsePolicy(string(req.DeletionPolicy))
	if err != nil {
		return nil, consumerErr(err)
	}
	switch {
	case policy == "":
		policy = props.Policy
	case props.Policy != "" && props.Policy != policy:
		return nil, Invalid("deletion policy %q contradicts metadata %s=%s", req.DeletionPolicy, consumers.MetaDeletionPolicy, props.Policy)
	}
	if policy == "" {
		policy = Retain
	}
	var format string
	if props.Format != "" {
		if format, err = ParseFormat(props.Format); err != nil {
			return nil, err
		}
	}
	var consumer *Consumer
	if req.Consumer != nil {
		c, err := s.newConsumer(who, *req.Consumer)
		if err != nil {
			return nil, err
		}
		consumer = &c
	}
	newID := newSecretID()

	// Queue with the source's writers: the copy is written only if the
	// source is unchanged, which a stream of consumer changes would deny.
	defer lockWrites(id)()
	need := usage{qSecrets: 1}
	if consumer != nil {
		need[qConsumers] = 1
	}
	hold, err := s.holdQuota(ctx, project, need)
	if err != nil {
		return nil, err
	}
	defer func() { hold.release(err == nil) }()
	var out *Secret
	// The queue is held above, with the quota: mutate takes no lock.
	err = s.mutate(ctx, "", Conflict("secret %s is being changed concurrently; try again", id), func() (edit, error) {
		l, err := s.read(ctx, id, View{})
		if err != nil {
			return edit{}, err
		}
		src := l.rec
		if err := s.allowSecret(SecretClone, who, src.Secret); err != nil {
			return edit{}, err
		}
		if err := extractable(src.Secret); err != nil {
			return edit{}, err // a clone would carry the material out of its protection
		}
		if !src.HasPayload || src.Sealed == nil {
			return edit{}, Conflict("secret %s has no payload to clone", id)
		}
		if src.State == Compromised {
			return edit{}, Conflict("secret %s is compromised and cannot be cloned", id)
		}
		now := s.clock()
		meta := consumers.CloneMetadata(src.Metadata)
		if extra := consumers.CloneMetadata(normalizeMetadata(req.Metadata)); len(extra) > 0 {
			if meta == nil {
				meta = map[string]string{}
			}
			maps.Copy(meta, extra)
		}
		name := src.Name
		if req.Name != nil {
			name = *req.Name
		}
		r, err := s.newRecord(ctx, who, project, CreateRequest{
			Name: name, Type: src.Type, Algorithm: src.Algorithm, BitLength: src.BitLength,
			Mode: src.Mode, State: Active, Metadata: meta, DeletionPolicy: policy,
		})
		if err != nil {
			return edit{}, err
		}
		r.ID, r.ClonedFrom, r.ContentType, r.HasPayload = newID, id, src.ContentType, true
		r.Digest, r.Generated = src.Digest.clone(), src.Generated // the same material
		r.Created, r.Updated = now, now
		if src.Encryption != nil {
			e := *src.Encryption
			r.Encryption = &e
		} else if f := srcFormat(src.Secret); f != "" {
			r.Encryption = &DiskEncryption{Format: f}
		}
		if format != "" {
			if r.Encryption == nil {
				r.Encryption = &DiskEncryption{}
			}
			r.Encryption.Format = format
		}
		if consumer != nil {
			r.Consumers = []Consumer{*consumer}
		}
		r.Sealed, err = s.keys.Reseal(ctx, src.binding(), src.Sealed, r.binding())
		if err != nil {
			return edit{}, internal("reseal", err)
		}
		b, err := s.encodeRecord(ctx, r, 1)
		if err != nil {
			return edit{}, err
		}
		out = r.Secret
		e := s.creation(r, b, joinDetail(fmt.Sprintf("clone of secret %s (project %s) into project %s", id, src.Project, project),
			secretDiff(nil, r.Secret)))
		// The source must be unchanged (or not gone) when the copy lands.
		e.cmps = append(e.cmps, store.Cmp{Key: recordKey(src.Project, id), Version: l.version})
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// srcFormat is the format a source's metadata names (os_encrypt_format set
// after it was created); "" when absent or not one we know, since Barbican
// metadata is free-form.
func srcFormat(sec *Secret) string {
	props, err := consumers.ParseProperties(sec.Metadata)
	if err != nil || props.Format == "" {
		return ""
	}
	f, err := ParseFormat(props.Format)
	if err != nil {
		return ""
	}
	return f
}
