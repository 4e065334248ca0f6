package kms

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// CreateRequest describes a new secret. Payload may be empty: the secret is
// then metadata only until PutPayload.
type CreateRequest struct {
	Name           string
	Type           SecretType // default Opaque
	Algorithm      string
	BitLength      int
	Mode           string
	Expiration     *time.Time
	Payload        []byte // the caller keeps ownership and zeroes it
	ContentType    string // of Payload
	Metadata       map[string]string
	Attributes     map[string]string
	DeletionPolicy DeletionPolicy // default Retain
	Encryption     *DiskEncryption
	// State is the initial state (default Active, Barbican's behaviour;
	// KMIP creates objects PreActive unless activated).
	State State
	// ActivationDate (KMIP) activates the secret at that time, whatever
	// State says: a date that has come makes it Active now, a future one
	// leaves it PreActive until then.
	ActivationDate *time.Time
	// UsageLimits (KMIP) bound the key's Encrypt and Decrypt use.
	UsageLimits *UsageLimits
	// ServedAtCreation (KMIP): the caller's own message Gets the object
	// right after creating it. If the caller may read its material, the
	// object is made not Fresh in the creation's own write and audit line,
	// so that Get writes nothing (no fresh_clear). Otherwise it is ignored.
	// The adapter calls RestoreFresh if that Get then fails.
	ServedAtCreation bool

	// generated: the server generated Payload (set by kms's generators only).
	generated bool
}

const maxBitLength = 32767

func (s *Service) validateCreate(req *CreateRequest) error {
	if req.Type == "" {
		req.Type = Opaque
	}
	if !req.Type.Valid() {
		return Invalid("unknown secret type %q", req.Type)
	}
	if len(req.Name) > MaxNameLen {
		return Invalid("name is longer than %d characters", MaxNameLen)
	}
	if req.BitLength < 0 || req.BitLength > maxBitLength {
		return Invalid("bit_length must be between 1 and %d", maxBitLength)
	}
	if req.Expiration != nil {
		if !req.Expiration.After(s.now()) {
			return Invalid("expiration is in the past")
		}
		t := req.Expiration.UTC().Truncate(time.Microsecond)
		req.Expiration = &t
	}
	if len(req.Payload) > s.maxPayload {
		return TooLarge("payload is larger than %d bytes", s.maxPayload)
	}
	if len(req.Payload) > 0 && req.ContentType == "" {
		return Invalid("a payload needs a content type")
	}
	// os_encrypt_* metadata may set the deletion policy and format (disk.go).
	if err := applyEncryptionMetadata(req); err != nil {
		return err
	}
	switch req.DeletionPolicy {
	case "":
		req.DeletionPolicy = Retain
	case Retain, OnLastConsumer:
	default:
		return Invalid("unknown deletion policy %q", req.DeletionPolicy)
	}
	switch req.State {
	case "":
		req.State = Active
	case PreActive, Active:
	default:
		return Invalid("a new secret cannot be %s", req.State)
	}
	if d := req.ActivationDate; d != nil {
		// The date decides: one that has come activates the secret now, a
		// future one leaves it pre-active until it comes (dueActivation).
		req.State = PreActive
		if !d.After(s.now()) {
			req.State = Active
		}
	}
	if err := validateMetadata(req.Metadata); err != nil {
		return err
	}
	return validUsageLimits(req.UsageLimits, req.Type)
}

// CreateSecret stores a new secret owned by the caller's project.
func (s *Service) CreateSecret(ctx context.Context, who Identity, req CreateRequest) (sec *Secret, err error) {
	ctx = s.begin(ctx, who, "create")
	defer func() { s.record(ctx, who, "create", idOf(sec), err) }()
	if err := who.Validate(); err != nil {
		return nil, err
	}
	if err := s.allowProject(SecretCreate, who); err != nil {
		return nil, err
	}
	if err := s.validateCreate(&req); err != nil {
		return nil, err
	}
	// The quota first: a refused create must not leave a project key behind.
	hold, err := s.holdQuota(ctx, who.Project, usage{qSecrets: 1})
	if err != nil {
		return nil, err
	}
	defer func() { hold.release(err == nil) }()
	r, err := s.newRecord(ctx, who, who.Project, req)
	if err != nil {
		return nil, err
	}
	served := req.ServedAtCreation && s.servable(who, r)
	b, err := s.insertAs(ctx, r, served)
	if err != nil {
		return nil, err
	}
	// A served create's Get comes next (a KMIP pair): nothing else holds r,
	// so when it is what its stored bytes decode to, that Get skips
	// verifying and decoding it. Other creates leave the cache alone (a
	// bulk create would fill it and grow the GC's live heap).
	if served && decodesAsIs(r.Secret) {
		s.cache.prime(r.ID, 1, b, r)
		return r.Secret.Clone(), nil // the cache holds r
	}
	// Nothing in the service holds r (its maps are new or the request's
	// own): the caller can have it without a copy.
	return r.Secret, nil
}

// servable tells whether GetPayload would serve r's material to who: the
// same checks, so that a creation marked served is one the Get can answer.
func (s *Service) servable(who Identity, r *record) bool {
	return r.HasPayload && s.allowSecret(SecretDecrypt, who, r.Secret) == nil && extractable(r.Secret) == nil
}

// idOf tolerates a nil secret in deferred audit calls.
func idOf(s *Secret) string {
	if s == nil {
		return ""
	}
	return s.ID
}

func (s *Service) seal(ctx context.Context, r *record, payload []byte, contentType string) error {
	env, err := s.keys.Seal(ctx, r.binding(), payload)
	if err != nil {
		return internal("seal", err)
	}
	r.Sealed, r.HasPayload, r.ContentType = env, true, contentType
	r.Digest = digestOf(r.Type, payload)
	return nil
}

// insert writes a new record and its id pointer in one transaction.
func (s *Service) insert(ctx context.Context, r *record, extra ...store.Op) error {
	_, err := s.insertAs(ctx, r, false, extra...)
	return err
}

// insertAs is insert of an object Fresh unless served (ServedAtCreation);
// it returns the stored bytes (version 1).
func (s *Service) insertAs(ctx context.Context, r *record, served bool, extra ...store.Op) ([]byte, error) {
	// What KMIP derives from the object's making (Always Sensitive, Never
	// Extractable, Fresh), recorded once here.
	r.AlwaysSensitive = r.Attributes[AttrSensitive] == "b:true"
	r.NeverExtractable = r.Attributes[AttrExtractable] == "b:false"
	r.Fresh = !served
	b, err := s.encodeRecord(ctx, r, 1)
	if err != nil {
		return nil, err
	}
	var servedNote string
	if served {
		servedNote = "served at creation: not fresh"
	}
	e := s.creation(r, b, joinDetail("project "+r.Project, secretDiff(nil, r.Secret), servedNote))
	e.ops = append(e.ops, extra...)
	marker := s.markerOps()
	e.ops = append(e.ops, marker...)
	err = s.mutate(ctx, "", nil, once(e, func() error { return Conflict("secret %s already exists", r.ID) }))
	if err == nil && marker != nil {
		s.listMarkerPending.Store(false)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// creation is the edit that writes the new secret r, encoded as b: its
// record, its id pointer (which must not exist yet), its ACL index and its
// list index entry.
func (s *Service) creation(r *record, b []byte, detail string) edit {
	acl, list := aclIndexOps(nil, r.Secret), s.listIndexOps(nil, r.Secret)
	// One allocation, with room for the list markers insertAs may add.
	ops := make([]store.Op, 0, 4+len(acl)+len(list))
	ptr := pointerKey(r.ID)
	ops = append(ops, store.Put(recordKey(r.Project, r.ID), b), store.Put(ptr, []byte(r.Project)))
	ops = append(append(ops, acl...), list...)
	return edit{
		id: r.ID, detail: detail,
		cmps:  []store.Cmp{{Key: ptr}},
		ops:   ops,
		after: settle{project: r.Project, owned: r.ID},
	}
}

// once decides e for a create under fresh keys: there is nothing to read
// again, so a conflict (the keys were taken meanwhile) ends with taken's
// error (made only then: every create passes one).
func once(e edit, taken func() error) func() (edit, error) {
	tried := false
	return func() (edit, error) {
		if tried {
			return edit{}, taken()
		}
		tried = true
		return e, nil
	}
}

// GenerateRequest asks the server to make the material: a symmetric key of
// BitLength bits (default 256) or a passphrase under Passphrase (default the
// service's policy).
type GenerateRequest struct {
	CreateRequest
	Passphrase *crypto.PassphrasePolicy
}

// GenerateSecret creates a secret whose material the server generates.
func (s *Service) GenerateSecret(ctx context.Context, who Identity, req GenerateRequest) (*Secret, error) {
	if len(req.Payload) > 0 {
		return nil, Invalid("a generated secret takes no payload")
	}
	switch req.Type {
	case Symmetric:
		if req.BitLength == 0 {
			req.BitLength = 256
		}
		if req.Algorithm == "" {
			req.Algorithm = "aes"
		}
	case Passphrase:
	default:
		return nil, Invalid("only symmetric keys and passphrases can be generated, not %q", req.Type)
	}
	material, err := s.generateMaterial(&req.CreateRequest, req.Passphrase)
	if err != nil {
		return nil, err
	}
	defer crypto.Zero(material)
	req.Payload, req.generated = material, true
	return s.CreateSecret(ctx, who, req.CreateRequest)
}

// passphrasePolicy is the caller's policy over the service's default.
func (s *Service) passphrasePolicy(pp *crypto.PassphrasePolicy) (crypto.PassphrasePolicy, error) {
	p := s.passphrase
	if pp == nil {
		return p, nil
	}
	if pp.Length != 0 {
		p.Length = pp.Length
	}
	if pp.Alphabet != "" {
		p.Alphabet = pp.Alphabet
	}
	if err := p.Validate(); err != nil {
		return p, Invalid("passphrase policy: %v", err)
	}
	return p, nil
}

// generateMaterial makes a fresh symmetric key of req.BitLength bits or a
// passphrase under pp (over the default), and sets req.ContentType. The
// caller zeroes the material.
func (s *Service) generateMaterial(req *CreateRequest, pp *crypto.PassphrasePolicy) ([]byte, error) {
	if req.Type == Symmetric {
		switch normAlgorithm(req.Algorithm) {
		case "3des", "des", "tripledes":
			// As for Encrypt (cipher.go): 64-bit block ciphers, refused by design.
			return nil, Invalid("%s keys are refused by design: the server makes AES keys", req.Algorithm)
		}
		k, err := crypto.GenerateKey(req.BitLength)
		if err != nil {
			return nil, Invalid("cannot generate a %d-bit key: sizes are 128, 192, 256 and 512", req.BitLength)
		}
		req.ContentType = ContentTypeBinary
		return k, nil
	}
	p, err := s.passphrasePolicy(pp)
	if err != nil {
		return nil, err
	}
	m, err := crypto.GeneratePassphrase(p)
	if err != nil {
		return nil, internal("generate", err)
	}
	req.ContentType = ContentTypeText
	return m, nil
}

// PutPayload gives a metadata-only secret its payload (Barbican two-step).
func (s *Service) PutPayload(ctx context.Context, who Identity, id string, payload []byte, contentType string) (err error) {
	ctx = s.begin(ctx, who, "put_payload")
	defer func() { s.record(ctx, who, "put_payload", id, err) }()
	if len(payload) == 0 {
		return Invalid("no payload")
	}
	if len(payload) > s.maxPayload {
		return TooLarge("payload is larger than %d bytes", s.maxPayload)
	}
	_, err = s.update(ctx, id, View{}, func(r *record) error {
		if err := s.allowSecret(SecretUpdate, who, r.Secret); err != nil {
			return err
		}
		if r.HasPayload {
			return Conflict("Secret already has data, cannot modify it.")
		}
		return s.seal(ctx, r, payload, contentType)
	})
	return err
}

// GetSecret returns a secret's metadata as v sees it: the zero View is
// live secrets only; a destroyed object keeps its attributes for a caller
// that asks for destroyed ones too.
func (s *Service) GetSecret(ctx context.Context, who Identity, id string, v View) (*Secret, error) {
	l, err := s.read(ctx, id, v)
	if err != nil {
		return nil, err
	}
	if err := s.allowSecret(SecretRead, who, l.rec.Secret); err != nil {
		return nil, err
	}
	return l.rec.Secret.Clone(), nil
}

// GetPayload returns the secret and its plaintext; the caller must
// crypto.Zero the plaintext when done.
func (s *Service) GetPayload(ctx context.Context, who Identity, id string) (sec *Secret, payload []byte, err error) {
	return s.ServePayload(ctx, who, id, nil)
}

// ServePayload is GetPayload with serve, when given, run on the secret and
// its plaintext before the object counts as served: an object that serve
// refuses (KMIP: a Key Format Type it cannot be given in) was not handed
// out, so it stays Fresh; the refusal is serve's error.
func (s *Service) ServePayload(ctx context.Context, who Identity, id string, serve func(*Secret, []byte) error) (sec *Secret, payload []byte, err error) {
	return s.servePayload(ctx, who, id, serve, false)
}

// servePayload is ServePayload; with shared, the secret returned is the
// record cache's own (no Clone per read), which the caller must neither
// change nor let out of kms, and whose Fresh may still be set.
func (s *Service) servePayload(ctx context.Context, who Identity, id string, serve func(*Secret, []byte) error, shared bool) (sec *Secret, payload []byte, err error) {
	defer func() { s.record(ctx, who, "read_payload", id, err) }()
	l, err := s.read(ctx, id, View{})
	if err != nil {
		return nil, nil, err
	}
	if err := s.allowSecret(SecretDecrypt, who, l.rec.Secret); err != nil {
		return nil, nil, err
	}
	if err := extractable(l.rec.Secret); err != nil {
		return nil, nil, err
	}
	if !l.rec.HasPayload || l.rec.Sealed == nil {
		return nil, nil, NotFound("Secret has no payload.")
	}
	pt, err := s.keys.Open(ctx, l.rec.binding(), l.rec.Sealed)
	if err != nil {
		return nil, nil, internal("open", err)
	}
	out := l.rec.Secret
	if !shared {
		out = out.Clone()
	}
	if serve != nil {
		if err := serve(out, pt); err != nil {
			crypto.Zero(pt)
			return nil, nil, err
		}
	}
	if out.Fresh {
		s.clearFresh(ctx, who, id)
		if !shared {
			out.Fresh = false // returned now: no longer fresh, whatever the write did
		}
	}
	return out, pt, nil
}

// clearFresh records that a fresh object was returned (KMIP Fresh, §3.48):
// one audited write, made only while the object is still fresh, and by
// one reader at a time (the others answer at once: it is being cleared).
// It is lazy (beginLazy): losing it to a machine crash only leaves the
// object Fresh, as does a failed or raced write; the Get still answers.
func (s *Service) clearFresh(ctx context.Context, who Identity, id string) {
	if _, busy := s.freshing.LoadOrStore(id, struct{}{}); busy {
		return
	}
	defer s.freshing.Delete(id)
	ctx = s.beginLazy(ctx, who, "fresh_clear")
	_, err := s.update(ctx, id, View{}, func(r *record) error {
		if !r.Fresh {
			return errUnchanged
		}
		r.Fresh = false
		return nil
	})
	if !errors.Is(err, errUnchanged) {
		s.record(ctx, who, "fresh_clear", id, err)
	}
}

// RestoreFresh makes Fresh again an object created ServedAtCreation whose
// Get then failed: it was not served after all. Audited (fresh_restore);
// the caller must be one who may read the material, as for that Get.
func (s *Service) RestoreFresh(ctx context.Context, who Identity, id string) (err error) {
	ctx = s.begin(ctx, who, "fresh_restore")
	_, err = s.update(ctx, id, View{}, func(r *record) error {
		if err := s.allowSecret(SecretDecrypt, who, r.Secret); err != nil {
			return err
		}
		if r.Fresh {
			return errUnchanged
		}
		r.Fresh = true
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	s.record(ctx, who, "fresh_restore", id, err)
	return err
}

// DeleteSecret removes a secret. A secret with consumers is refused unless
// force is set by a project admin.
func (s *Service) DeleteSecret(ctx context.Context, who Identity, id string, force bool) (err error) {
	ctx = s.begin(ctx, who, "delete")
	defer func() { s.record(ctx, who, "delete", id, err) }()
	_, err = s.update(ctx, id, View{}, func(r *record) error {
		if err := s.allowSecret(SecretDelete, who, r.Secret); err != nil {
			return err
		}
		if len(r.Consumers) > 0 {
			if !force {
				return Conflict("Secret has consumers and cannot be deleted: %s. Remove them first or delete with force.", consumerList(r.Consumers))
			}
			if !s.policy.allows("project_admin", &who, secretTarget(r.Secret)) {
				return Forbidden("only a project admin can force the deletion of a secret in use")
			}
		}
		return errDelete
	})
	return err
}

func consumerList(cs []Consumer) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, c.Service+"/"+c.ResourceType+"/"+c.ResourceID)
	}
	return strings.Join(parts, ", ")
}

var metaKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

func validateMetadata(m map[string]string) error {
	for k, v := range m {
		if !metaKeyRE.MatchString(k) {
			return Invalid("invalid metadata key %q: keys use A-Z, a-z, 0-9, _ and -, at most 255", k)
		}
		if len(v) > 255 {
			return Invalid("metadata value of %q is longer than 255 characters", k)
		}
	}
	return nil
}

// normalizeMetadata lowercases keys, as Barbican does.
func normalizeMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[MetadataKey(k)] = v
	}
	return out
}
