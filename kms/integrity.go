package kms

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// Stored records carry a tag under their project's KEK over their bytes,
// id and store version (crypto/integrity.go): appended to a secret's CBOR
// record (record_codec.go), the last member of JSON ones (containers, and
// secrets written before records were CBOR). An
// edit of the store that grants access, changes a policy or puts an older
// copy back (the store's version moves on every write; etcd's cannot be
// set by a client) fails the check: the record is not served, the event is
// audited. The tag is written once per write and checked once per stored
// version (the record cache remembers what it verified).

const tagMember = `,"tag":"`

// encodeRecord is r's stored form at the version the write gives it.
// It is CBOR followed by its tag (record_codec.go).
func (s *Service) encodeRecord(ctx context.Context, r *record, version int64) ([]byte, error) {
	// The body is written after the tag's prefix (tagInput's form), so
	// the tagged bytes are not copied again; the stored form is the body
	// and the tag that follows it in the same array.
	in := make([]byte, 0, recordBufSize+len(r.ID))
	in = append(append(in, "secret:"...), r.ID...)
	in = strconv.AppendInt(append(in, 0), version, 10)
	in = append(in, 0)
	p := len(in)
	in = appendRecord(in, r)
	tag, err := s.keys.Tag(ctx, r.Project, in)
	if err != nil {
		return nil, internal("tag", err)
	}
	return append(in[p:], tag...), nil
}

// recordBufSize holds a key's record and tag without growing (a KMIP
// AES key's is ~430 bytes).
const recordBufSize = 512 + crypto.TagSize

// encodeTagged is v's JSON with its tag (for object, e.g. "secret:<id>")
// as the last member.
func (s *Service) encodeTagged(ctx context.Context, project, object string, version int64, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, internal("encode", err)
	}
	tag, err := s.keys.Tag(ctx, project, tagInput(object, version, b))
	if err != nil {
		return nil, internal("tag", err)
	}
	out := append(b[:len(b)-1], tagMember...)
	out = base64.RawStdEncoding.AppendEncode(out, tag)
	return append(out, '"', '}'), nil
}

func tagInput(object string, version int64, body []byte) []byte {
	in := make([]byte, 0, len(object)+24+len(body))
	in = append(in, object...)
	in = append(in, 0)
	in = strconv.AppendInt(in, version, 10)
	in = append(in, 0)
	return append(in, body...)
}

// errTampered is what a caller learns of a record that failed its check.
func errTampered(id string, cause error) error {
	return &Error{Kind: KindInternal, Err: cause,
		Msg: "secret " + id + " failed its integrity check and is not served; the operator has been told"}
}

// checkTagged verifies raw, stored for project/object at version, and
// returns it without its tag.
func (s *Service) checkTagged(ctx context.Context, project, object string, version int64, raw []byte) ([]byte, error) {
	i := bytes.LastIndex(raw, []byte(tagMember))
	if i < 0 || !bytes.HasSuffix(raw, []byte(`"}`)) {
		return nil, crypto.ErrTampered
	}
	tag, err := base64.RawStdEncoding.DecodeString(string(raw[i+len(tagMember) : len(raw)-2]))
	if err != nil {
		return nil, crypto.ErrTampered
	}
	body := append(raw[:i:i], '}') // a copy: raw may be the store's
	if err := s.keys.CheckTag(ctx, project, tagInput(object, version, body), tag); err != nil {
		return nil, err
	}
	return body, nil
}

// verifyRecord checks raw, stored for project/id at version, and decodes it.
func (s *Service) verifyRecord(ctx context.Context, project, id string, version int64, raw []byte) (*record, error) {
	var body []byte
	if isJSONRecord(raw) { // written before records were CBOR
		b, err := s.checkTagged(ctx, project, "secret:"+id, version, raw)
		if err != nil {
			return nil, err
		}
		body = b
	} else {
		b, tag, ok := splitTagged(raw)
		if !ok {
			return nil, crypto.ErrTampered
		}
		if err := s.keys.CheckTag(ctx, project, tagInput("secret:"+id, version, b), tag); err != nil {
			return nil, err
		}
		body = b
	}
	r, err := decodeRecord(body)
	if err != nil {
		return nil, err
	}
	if r.ID != id || r.Project != project {
		return nil, crypto.ErrTampered
	}
	return r, nil
}

// openRecord is the one way a stored secret record is read: verified on a
// cache miss, and a failure audited and refused.
func (s *Service) openRecord(ctx context.Context, project, id string, kv store.KV) (*record, error) {
	r, err := s.cache.decode(id, kv.Version, kv.Value, func(raw []byte) (*record, error) {
		return s.verifyRecord(ctx, project, id, kv.Version, raw)
	})
	if err == nil {
		return r, nil
	}
	if errors.Is(err, crypto.ErrTampered) {
		s.audit.Record(ctx, s.auditRecord(ctx, Identity{Project: project, User: "keywarden"}, "integrity_failure", id,
			"the stored record of project "+project+" does not verify: edited outside keywarden", "error"))
		s.logTamper(project, id)
		return nil, errTampered(id, err)
	}
	return nil, internal("decode", err)
}

// logTamper tells the operator through the service's logger.
func (s *Service) logTamper(project, id string) {
	s.log.Error("kms: a stored record failed its integrity check; it is not served", "project", project, "secret_id", id)
}

// openContainer verifies and decodes a stored container; a failure is
// audited and refused like a secret's.
func (s *Service) openContainer(ctx context.Context, project, id string, kv store.KV) (*Container, error) {
	body, err := s.checkTagged(ctx, project, "container:"+id, kv.Version, kv.Value)
	if errors.Is(err, crypto.ErrTampered) {
		s.audit.Record(ctx, s.auditRecord(ctx, Identity{Project: project, User: "keywarden"}, "integrity_failure", "",
			"container "+id+" of project "+project+" does not verify: edited outside keywarden", "error"))
		s.logTamper(project, id)
		return nil, &Error{Kind: KindInternal, Err: err,
			Msg: "container " + id + " failed its integrity check and is not served; the operator has been told"}
	} else if err != nil {
		return nil, internal("decode", err)
	}
	c := &Container{}
	if err := json.Unmarshal(body, c); err != nil {
		return nil, internal("decode", err)
	}
	if c.ID != id || c.Project != project {
		return nil, internal("decode", crypto.ErrTampered)
	}
	return c, nil
}
