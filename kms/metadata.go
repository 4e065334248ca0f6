package kms

import (
	"context"
	"maps"
	"strings"
)

// Secret user metadata (Barbican /v1/secrets/{id}/metadata). Reading needs
// read access; writing needs update access.

// MetadataKey is the stored form of a metadata key: Barbican lowercases them.
func MetadataKey(k string) string { return strings.ToLower(k) }

// GetMetadata returns the secret's user metadata.
func (s *Service) GetMetadata(ctx context.Context, who Identity, id string) (map[string]string, error) {
	l, err := s.read(ctx, id, View{})
	if err != nil {
		return nil, err
	}
	if err := s.allowSecret(SecretMetaRead, who, l.rec.Secret); err != nil {
		return nil, err
	}
	return maps.Clone(l.rec.Metadata), nil
}

// ReplaceMetadata replaces all user metadata.
func (s *Service) ReplaceMetadata(ctx context.Context, who Identity, id string, m map[string]string) (_ map[string]string, err error) {
	ctx = s.begin(ctx, who, "metadata_replace")
	defer func() { s.record(ctx, who, "metadata_replace", id, err) }()
	if err := validateMetadata(m); err != nil {
		return nil, err
	}
	sec, err := s.update(ctx, id, View{}, func(r *record) error {
		if err := s.allowSecret(SecretMetaWrite, who, r.Secret); err != nil {
			return err
		}
		r.Metadata = normalizeMetadata(m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sec.Metadata, nil
}

// SetMetadatum sets one key. With create, an existing key is a conflict
// (POST); otherwise a missing key is not found (PUT on /metadata/{key}).
func (s *Service) SetMetadatum(ctx context.Context, who Identity, id, key, value string, create bool) (err error) {
	ctx = s.begin(ctx, who, "metadata_set")
	defer func() { s.record(ctx, who, "metadata_set", id, err) }()
	if err := validateMetadata(map[string]string{key: value}); err != nil {
		return err
	}
	key = MetadataKey(key)
	_, err = s.update(ctx, id, View{}, func(r *record) error {
		if err := s.allowSecret(SecretMetaWrite, who, r.Secret); err != nil {
			return err
		}
		_, exists := r.Metadata[key]
		if create && exists {
			return Conflict("Secret metadata key %q already exists.", key)
		}
		if !create && !exists {
			return NotFound("Secret metadata key %q not found.", key)
		}
		if r.Metadata == nil {
			r.Metadata = map[string]string{}
		}
		r.Metadata[key] = value
		return nil
	})
	return err
}

// GetMetadatum returns one key's value.
func (s *Service) GetMetadatum(ctx context.Context, who Identity, id, key string) (string, error) {
	m, err := s.GetMetadata(ctx, who, id)
	if err != nil {
		return "", err
	}
	v, ok := m[MetadataKey(key)]
	if !ok {
		return "", NotFound("Secret metadata key %q not found.", key)
	}
	return v, nil
}

// DeleteMetadatum removes one key.
func (s *Service) DeleteMetadatum(ctx context.Context, who Identity, id, key string) (err error) {
	ctx = s.begin(ctx, who, "metadata_delete")
	defer func() { s.record(ctx, who, "metadata_delete", id, err) }()
	key = MetadataKey(key)
	_, err = s.update(ctx, id, View{}, func(r *record) error {
		if err := s.allowSecret(SecretMetaWrite, who, r.Secret); err != nil {
			return err
		}
		if _, ok := r.Metadata[key]; !ok {
			return NotFound("Secret metadata key %q not found.", key)
		}
		delete(r.Metadata, key)
		return nil
	})
	return err
}
