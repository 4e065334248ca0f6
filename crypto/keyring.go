package crypto

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// ErrKEKNotFound is returned by KEKStore.LoadKEK when a project has no KEK.
var ErrKEKNotFound = errors.New("crypto: project has no KEK")

// ErrMasterUnavailable is wrapped by a MasterKey's Wrap and Unwrap when the
// key's server cannot answer for now (Vault unreachable, sealed, timing out,
// answering 5xx): the request may succeed later and nothing was changed.
var ErrMasterUnavailable = errors.New("the master key is unavailable")

// ErrDecrypt is returned by Open for any envelope that does not open under
// the given binding: tampered, truncated, or moved onto another record.
var ErrDecrypt = errors.New("crypto: ciphertext does not open under this binding")

// KEKStore persists wrapped project KEKs; kms implements it on its store with
// compare-and-swap.
type KEKStore interface {
	// LoadKEK returns the project's wrapped KEK, or ErrKEKNotFound when absent.
	LoadKEK(ctx context.Context, project string) (wrapped []byte, err error)
	// CreateKEK stores wrapped if the project has none and returns the stored
	// value: when a concurrent creator won, its value is returned instead.
	CreateKEK(ctx context.Context, project string, wrapped []byte) (stored []byte, err error)
}

// Binding is what a ciphertext is bound to (AAD): copying it onto another
// record must fail to open. All three fields are required.
type Binding struct{ SecretID, Project, Type string }

func (b Binding) check() error {
	if b.SecretID == "" || b.Project == "" || b.Type == "" {
		return errors.New("crypto: binding needs a secret id, a project and a type")
	}
	return nil
}

// EnvelopeVersion is the only Envelope.Version this package seals and opens.
const EnvelopeVersion = 1

// Envelope is the sealed form of one payload, stored inside the secret's
// record (CBOR; JSON in records written before).
type Envelope struct {
	Version    int    `json:"v" cbor:"1,keyasint"`
	WrappedDEK []byte `json:"dek" cbor:"2,keyasint"` // per-secret data key sealed under the project KEK (AAD: binding)
	Ciphertext []byte `json:"ct" cbor:"3,keyasint"`  // nonce||AES-256-GCM(payload) under the DEK (AAD: binding)
}

const (
	keySize     = 32
	gcmOverhead = 12 + 16 // prefixed nonce + tag
	wrappedSize = keySize + gcmOverhead
)

// AAD domains; each layer has its own so a ciphertext of one layer can never
// be accepted as another.
const (
	domainKEK     = "keywarden/v1/kek-wrap"
	domainDEK     = "keywarden/v1/dek-wrap"
	domainPayload = "keywarden/v1/payload"
)

// appendField appends a 4-byte big-endian length and s.
func appendField(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func fieldSize(s string) int { return 4 + len(s) }

func appendBindingAAD(dst []byte, domain string, b Binding) []byte {
	dst = appendField(dst, domain)
	dst = appendField(dst, b.SecretID)
	dst = appendField(dst, b.Project)
	return appendField(dst, b.Type)
}

func bindingAADSize(domain string, b Binding) int {
	return fieldSize(domain) + fieldSize(b.SecretID) + fieldSize(b.Project) + fieldSize(b.Type)
}

// kekAAD is the additional data the master key binds a project KEK to.
func kekAAD(project string) []byte {
	dst := make([]byte, 0, fieldSize(domainKEK)+fieldSize(project))
	return appendField(appendField(dst, domainKEK), project)
}

// scratch holds one Seal/Open's DEK and both AADs in a single buffer,
// reused through scratchPool: the DEK part is zeroed before the buffer
// goes back (wipe), the AADs are not secret.
type scratch struct {
	pooled     *[]byte
	buf        []byte
	dek        []byte // len 0, cap keySize
	dekAAD     []byte
	payloadAAD []byte
}

// scratchPool holds scratch buffers; one of usual size fits a binding of
// a UUID, a project name and a type.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func newScratch(b Binding) scratch {
	d := keySize + bindingAADSize(domainDEK, b)
	n := d + bindingAADSize(domainPayload, b)
	p := scratchPool.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	buf := (*p)[:n]
	return scratch{
		pooled:     p,
		buf:        buf,
		dek:        buf[:0:keySize],
		dekAAD:     appendBindingAAD(buf[keySize:keySize:d], domainDEK, b),
		payloadAAD: appendBindingAAD(buf[d:d:n], domainPayload, b),
	}
}

// wipe zeroes the DEK (the AADs are not secret) and returns the buffer;
// s must not be used afterwards.
func (s scratch) wipe() {
	Zero(s.buf[:keySize])
	if s.pooled != nil {
		scratchPool.Put(s.pooled)
	}
}

// Keyring seals and opens payloads. It caches each project's unwrapped KEK as
// a ready AEAD; it is safe for concurrent use.
type Keyring struct {
	master MasterKey
	store  KEKStore

	keks sync.Map // project → cipher.AEAD; read-mostly, lock-free on the hot path

	mu      sync.Mutex
	loading map[string]*kekLoad // one load per project at a time in this process
}

// kekLoad is an in-flight KEK load that other callers wait on.
type kekLoad struct {
	done   chan struct{}
	create bool
	aead   cipher.AEAD
	err    error
}

// NewKeyring returns a Keyring whose project KEKs are wrapped by master and
// persisted in kek.
func NewKeyring(master MasterKey, kek KEKStore) *Keyring {
	return &Keyring{master: master, store: kek, loading: make(map[string]*kekLoad)}
}

// Forget drops a cached KEK (for cache invalidation from an etcd watch). A
// load in flight for the project is not cached when it finishes.
func (k *Keyring) Forget(project string) {
	k.mu.Lock()
	delete(k.loading, project)
	k.keks.Delete(project)
	k.mu.Unlock()
}

// projectKEK returns the project's KEK AEAD, loading it, and with create also
// creating it, on first use.
func (k *Keyring) projectKEK(ctx context.Context, project string, create bool) (cipher.AEAD, error) {
	if a, ok := k.keks.Load(project); ok {
		return a.(cipher.AEAD), nil
	}
	for {
		k.mu.Lock()
		if a, ok := k.keks.Load(project); ok {
			k.mu.Unlock()
			return a.(cipher.AEAD), nil
		}
		if l := k.loading[project]; l != nil {
			k.mu.Unlock()
			select {
			case <-l.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if l.err == nil {
				return l.aead, nil
			}
			// The leader's caller gave up, or it was not allowed to create the
			// KEK we are allowed to create: try again ourselves.
			leaderCancelled := errors.Is(l.err, context.Canceled) || errors.Is(l.err, context.DeadlineExceeded)
			if (leaderCancelled && ctx.Err() == nil) || (create && !l.create && errors.Is(l.err, ErrKEKNotFound)) {
				continue
			}
			return nil, l.err
		}
		l := &kekLoad{done: make(chan struct{}), create: create}
		k.loading[project] = l
		k.mu.Unlock()

		l.aead, l.err = k.fetchKEK(ctx, project, create)

		k.mu.Lock()
		if k.loading[project] == l { // else Forget ran meanwhile
			delete(k.loading, project)
			if l.err == nil {
				k.keks.Store(project, l.aead)
			}
		}
		k.mu.Unlock()
		close(l.done)
		return l.aead, l.err
	}
}

// fetchKEK reads the project's wrapped KEK from the store (creating it if
// allowed and absent) and unwraps it with the master key.
func (k *Keyring) fetchKEK(ctx context.Context, project string, create bool) (cipher.AEAD, error) {
	wrapped, err := k.store.LoadKEK(ctx, project)
	if errors.Is(err, ErrKEKNotFound) && create {
		return k.createKEK(ctx, project)
	}
	if err != nil {
		return nil, fmt.Errorf("crypto: loading KEK of project %q: %w", project, err)
	}
	raw, err := unwrapKEK(ctx, k.master, project, wrapped)
	if err != nil {
		return nil, err
	}
	defer Zero(raw)
	return newAEAD(raw)
}

// createKEK makes a random KEK and stores it unless another node got there
// first, in which case the stored KEK is the one used.
func (k *Keyring) createKEK(ctx context.Context, project string) (cipher.AEAD, error) {
	raw := make([]byte, keySize)
	rand.Read(raw)
	defer Zero(raw)
	mine, err := wrapKEK(ctx, k.master, project, raw)
	if err != nil {
		return nil, err
	}
	stored, err := k.store.CreateKEK(ctx, project, mine)
	if err != nil {
		return nil, fmt.Errorf("crypto: storing KEK of project %q: %w", project, err)
	}
	if bytes.Equal(stored, mine) {
		return newAEAD(raw)
	}
	other, err := unwrapKEK(ctx, k.master, project, stored)
	if err != nil {
		return nil, err
	}
	defer Zero(other)
	return newAEAD(other)
}

// Wrapped KEK format: version byte, master ID length byte, master ID, then
// the master key's output. Recording the ID lets a wrong master key fail with
// a clear message and lets an interrupted rotation resume.
const wrappedKEKFormat = 1

func wrapKEK(ctx context.Context, m MasterKey, project string, raw []byte) ([]byte, error) {
	id := m.ID()
	if id == "" || len(id) > 255 {
		return nil, fmt.Errorf("crypto: master key ID %q must be 1..255 bytes", id)
	}
	inner, err := m.Wrap(ctx, raw, kekAAD(project))
	if err != nil {
		return nil, fmt.Errorf("crypto: wrapping KEK of project %q with master key %s: %w", project, id, err)
	}
	out := make([]byte, 0, 2+len(id)+len(inner))
	out = append(out, wrappedKEKFormat, byte(len(id)))
	out = append(out, id...)
	return append(out, inner...), nil
}

func parseWrappedKEK(wrapped []byte) (masterID string, inner []byte, err error) {
	if len(wrapped) < 3 || wrapped[0] != wrappedKEKFormat || len(wrapped) < 2+int(wrapped[1]) || wrapped[1] == 0 {
		return "", nil, errors.New("crypto: malformed wrapped KEK")
	}
	n := 2 + int(wrapped[1])
	return string(wrapped[2:n]), wrapped[n:], nil
}

// WrappedKEKMasterID reports which master key wrapped a stored KEK (e.g. to
// find the projects a rotation has not reached yet).
func WrappedKEKMasterID(wrapped []byte) (string, error) {
	id, _, err := parseWrappedKEK(wrapped)
	return id, err
}

func unwrapKEK(ctx context.Context, m MasterKey, project string, wrapped []byte) ([]byte, error) {
	id, inner, err := parseWrappedKEK(wrapped)
	if err != nil {
		return nil, fmt.Errorf("crypto: KEK of project %q: %w", project, err)
	}
	if id != m.ID() {
		return nil, fmt.Errorf("crypto: KEK of project %q is wrapped by master key %s, not %s", project, id, m.ID())
	}
	raw, err := m.Unwrap(ctx, inner, kekAAD(project))
	if err != nil {
		return nil, fmt.Errorf("crypto: unwrapping KEK of project %q: %w", project, err)
	}
	if len(raw) != keySize {
		Zero(raw)
		return nil, fmt.Errorf("crypto: KEK of project %q unwraps to %d bytes, want %d", project, len(raw), keySize)
	}
	return raw, nil
}

// RewrapKEK re-wraps one project's stored KEK from oldMaster to newMaster for
// master-key rotation; payload envelopes are untouched. A KEK already wrapped
// by newMaster is checked and returned unchanged, so a rotation can be re-run.
func RewrapKEK(ctx context.Context, oldMaster, newMaster MasterKey, project string, wrapped []byte) ([]byte, error) {
	id, _, err := parseWrappedKEK(wrapped)
	if err != nil {
		return nil, fmt.Errorf("crypto: KEK of project %q: %w", project, err)
	}
	if id == newMaster.ID() {
		raw, err := unwrapKEK(ctx, newMaster, project, wrapped)
		if err != nil {
			return nil, err
		}
		Zero(raw)
		return wrapped, nil
	}
	raw, err := unwrapKEK(ctx, oldMaster, project, wrapped)
	if err != nil {
		return nil, err
	}
	defer Zero(raw)
	return wrapKEK(ctx, newMaster, project, raw)
}

// Seal creates the project's KEK on first use, then seals plaintext under a
// fresh 32-byte DEK that is wrapped by the project KEK and zeroed after use.
// Once the project is warm it does local AES only.
func (k *Keyring) Seal(ctx context.Context, b Binding, plaintext []byte) (*Envelope, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	kek, err := k.projectKEK(ctx, b.Project, true)
	if err != nil {
		return nil, err
	}
	return seal(kek, b, plaintext)
}

func seal(kek cipher.AEAD, b Binding, plaintext []byte) (*Envelope, error) {
	s := newScratch(b)
	defer s.wipe()
	dek := s.dek[:keySize]
	rand.Read(dek)
	d, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	// Both ciphertexts share one allocation; capacities are capped so that
	// appending to one can never overwrite the other.
	out := make([]byte, wrappedSize+gcmOverhead+len(plaintext))
	e := &Envelope{Version: EnvelopeVersion}
	e.WrappedDEK = kek.Seal(out[:0:wrappedSize], nil, dek, s.dekAAD)
	e.Ciphertext = d.Seal(out[wrappedSize:wrappedSize:len(out)], nil, plaintext, s.payloadAAD)
	return e, nil
}

// Open returns a fresh plaintext buffer the caller must Zero. Anything that
// does not open under b gives ErrDecrypt, with no detail about why.
func (k *Keyring) Open(ctx context.Context, b Binding, e *Envelope) ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	if e == nil {
		return nil, ErrDecrypt
	}
	if e.Version != EnvelopeVersion {
		return nil, fmt.Errorf("%w (envelope version %d, want %d)", ErrDecrypt, e.Version, EnvelopeVersion)
	}
	if len(e.WrappedDEK) != wrappedSize || len(e.Ciphertext) < gcmOverhead {
		return nil, ErrDecrypt
	}
	kek, err := k.projectKEK(ctx, b.Project, false)
	if errors.Is(err, ErrKEKNotFound) {
		// A ciphertext moved to a project without a KEK is a wrong binding.
		return nil, fmt.Errorf("%w (project %q has no KEK: %w)", ErrDecrypt, b.Project, ErrKEKNotFound)
	}
	if err != nil {
		return nil, err
	}
	return open(kek, b, e)
}

func open(kek cipher.AEAD, b Binding, e *Envelope) ([]byte, error) {
	s := newScratch(b)
	defer s.wipe()
	dek, err := kek.Open(s.dek, nil, e.WrappedDEK, s.dekAAD)
	if err != nil || len(dek) != keySize {
		return nil, ErrDecrypt
	}
	d, err := newAEAD(dek)
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := d.Open(make([]byte, 0, len(e.Ciphertext)-gcmOverhead), nil, e.Ciphertext, s.payloadAAD)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Reseal re-seals an envelope for a new binding (new secret id / project)
// without the plaintext leaving this package (server-side clone): it opens
// with src, seals with dst and zeroes the plaintext in between.
func (k *Keyring) Reseal(ctx context.Context, src Binding, e *Envelope, dst Binding) (*Envelope, error) {
	if err := dst.check(); err != nil {
		return nil, err
	}
	pt, err := k.Open(ctx, src, e)
	if err != nil {
		return nil, err
	}
	defer Zero(pt)
	return k.Seal(ctx, dst, pt)
}
