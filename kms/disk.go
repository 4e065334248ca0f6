package kms

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/crypto"
)

// Per-disk secrets: one fresh secret per disk (Nova's ephemeral disks,
// Cinder's and CloudStack's volumes), created together with the disk as its
// consumer in one write, so a crash leaves neither a secret nobody knows
// about nor a consumer without its secret.

// Disk encryption formats, as recorded on a secret.
const (
	FormatLUKS1 = "luks1"
	FormatLUKS2 = "luks2"
	FormatPlain = "plain" // dm-crypt without a header
)

// DefaultCipher is what Nova, Cinder and CloudStack use (XTS-AES).
const DefaultCipher = "aes-xts-plain64"

// ParseFormat normalizes the names callers use for a format: Nova's "luks",
// the image specification's "LUKSv1", cryptsetup's "luks2", "plain".
func ParseFormat(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "luks", "luks1", "luksv1":
		return FormatLUKS1, nil
	case "luks2", "luksv2":
		return FormatLUKS2, nil
	case "plain", "dm-crypt", "dmcrypt":
		return FormatPlain, nil
	}
	return "", Invalid("unknown encryption format %q: use luks1, luks2 or plain", s)
}

var cipherRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9:]+)*$`)

// normalizeEncryption fills defaults (LUKS1, aes-xts-plain64) and checks the
// key size fits the cipher: XTS splits its key in two, so 256 (AES-128) or
// 512 (AES-256) bits; other AES modes 128, 192 or 256. A zero KeySize is
// left for the caller's default.
func normalizeEncryption(e *DiskEncryption) error {
	f, err := ParseFormat(e.Format)
	if err != nil {
		return err
	}
	if f == "" {
		f = FormatLUKS1
	}
	e.Format = f
	e.Cipher = strings.ToLower(strings.TrimSpace(e.Cipher))
	if e.Cipher == "" {
		e.Cipher = DefaultCipher
	}
	if len(e.Cipher) > 64 || !cipherRE.MatchString(e.Cipher) {
		return Invalid("invalid cipher %q (e.g. aes-xts-plain64)", e.Cipher)
	}
	if e.KeySize == 0 {
		return nil
	}
	sizes := []int{128, 192, 256}
	if cipherMode(e.Cipher) == "xts" {
		sizes = []int{256, 512}
	}
	if !slices.Contains(sizes, e.KeySize) {
		return Invalid("key size %d does not fit cipher %s: use one of %v bits", e.KeySize, e.Cipher, sizes)
	}
	return nil
}

// cipherMode is the block mode of a cryptsetup cipher spec ("aes-xts-plain64" → "xts").
func cipherMode(c string) string {
	parts := strings.Split(c, "-")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// applyEncryptionMetadata normalizes the deletion policy and reads the
// encrypted-image metadata names a caller may put on a new secret: os_encrypt_key_deletion_policy sets the deletion
// policy, os_encrypt_format the recorded format.
func applyEncryptionMetadata(req *CreateRequest) error {
	// Adapters pass the policy as the caller spelled it (on_image_deletion…).
	p, err := consumers.ParsePolicy(string(req.DeletionPolicy))
	if err != nil {
		return consumerErr(err)
	}
	req.DeletionPolicy = p
	props, err := consumers.ParseProperties(req.Metadata)
	if err != nil {
		return consumerErr(err)
	}
	if props.Policy != "" {
		if req.DeletionPolicy != "" && req.DeletionPolicy != props.Policy {
			return Invalid("deletion policy %q contradicts metadata %s=%s", req.DeletionPolicy, consumers.MetaDeletionPolicy, props.Policy)
		}
		req.DeletionPolicy = props.Policy
	}
	if props.Format != "" && req.Encryption == nil {
		req.Encryption = &DiskEncryption{Format: props.Format}
	}
	if req.Encryption != nil {
		e := *req.Encryption
		if err := normalizeEncryption(&e); err != nil {
			return err
		}
		req.Encryption = &e
	}
	return nil
}

// DiskSecretRequest asks for a fresh secret for one disk.
type DiskSecretRequest struct {
	// Disk is the resource that will use the secret; it becomes the
	// secret's first consumer.
	Disk Consumer
	// Project owns the secret; empty: the caller's. Another project needs
	// a service role.
	Project string
	// Type is Passphrase (default: Nova ephemeral disks, CloudStack volumes)
	// or Symmetric (Cinder volumes; default for plain dm-crypt).
	Type       SecretType
	Encryption DiskEncryption // format (default luks1), cipher, key size
	// BitLength of a symmetric key; default Encryption.KeySize, else 256.
	BitLength      int
	Name           string
	Metadata       map[string]string
	DeletionPolicy DeletionPolicy
	Expiration     *time.Time
	Passphrase     *crypto.PassphrasePolicy
}

// diskPlan is a validated DiskSecretRequest: what to generate and store.
type diskPlan struct {
	project string
	create  CreateRequest
	disk    Consumer
	pass    crypto.PassphrasePolicy
}

func (s *Service) planDisk(who Identity, req DiskSecretRequest) (*diskPlan, error) {
	if err := who.Validate(); err != nil {
		return nil, err
	}
	p := &diskPlan{project: req.Project}
	if p.project == "" {
		p.project = who.Project
	}
	if err := (Identity{Project: p.project}).Validate(); err != nil {
		return nil, Invalid("invalid project %q", p.project)
	}
	if err := s.canCreateIn(OrderCreate, who, p.project); err != nil {
		return nil, err
	}
	disk, err := s.newConsumer(who, req.Disk)
	if err != nil {
		return nil, err
	}
	p.disk = disk
	enc := req.Encryption
	if err := normalizeEncryption(&enc); err != nil {
		return nil, err
	}
	typ := req.Type
	if typ == "" {
		typ = Passphrase
		if enc.Format == FormatPlain {
			typ = Symmetric
		}
	}
	cr := CreateRequest{
		Name: req.Name, Type: typ, Expiration: req.Expiration, Metadata: req.Metadata,
		DeletionPolicy: req.DeletionPolicy,
	}
	switch typ {
	case Symmetric:
		bits := req.BitLength
		switch {
		case bits == 0 && enc.KeySize != 0:
			bits = enc.KeySize
		case bits == 0:
			bits = 256
		case enc.KeySize != 0 && enc.KeySize != bits:
			return nil, Invalid("bit_length %d differs from the key size %d of the encryption", bits, enc.KeySize)
		}
		enc.KeySize = bits
		if err := normalizeEncryption(&enc); err != nil {
			return nil, err
		}
		cr.BitLength, cr.Algorithm, cr.Mode = bits, "aes", cipherMode(enc.Cipher)
		cr.ContentType = ContentTypeBinary
	case Passphrase:
		if req.BitLength != 0 {
			return nil, Invalid("bit_length applies to symmetric keys; the LUKS key size of a passphrase disk is encryption key_size")
		}
		if enc.KeySize == 0 {
			enc.KeySize = 512 // cryptsetup's LUKS default for aes-xts-plain64
		}
		var err error
		if p.pass, err = s.passphrasePolicy(req.Passphrase); err != nil {
			return nil, err
		}
		cr.ContentType = ContentTypeText
	default:
		return nil, Invalid("a disk secret is a passphrase or a symmetric key, not %q", typ)
	}
	cr.Encryption = &enc
	if cr.Name == "" {
		cr.Name = diskName(disk)
	}
	if err := s.validateCreate(&cr); err != nil {
		return nil, err
	}
	p.create = cr
	return p, nil
}

// diskName names a disk's secret after the disk, within MaxNameLen.
func diskName(c Consumer) string {
	n := fmt.Sprintf("%s %s %s", c.Service, c.ResourceType, c.ResourceID)
	if len(n) > MaxNameLen {
		n = n[:MaxNameLen]
	}
	return n
}

// generate makes the plan's material; the caller zeroes it.
func (s *Service) generate(p *diskPlan) ([]byte, error) {
	return s.generateMaterial(&p.create, &p.pass)
}

// newRecord builds a secret record owned by project from a validated
// request; the payload is sealed when given.
func (s *Service) newRecord(ctx context.Context, who Identity, project string, req CreateRequest) (*record, error) {
	now := s.clock()
	r := &record{Secret: &Secret{
		ID: newSecretID(), Project: project, Creator: who.User, CreatorSource: who.Source,
		Name: req.Name, Type: req.Type, Algorithm: req.Algorithm, BitLength: req.BitLength,
		Mode: req.Mode, Expiration: req.Expiration, State: req.State, Created: now, Updated: now,
		Metadata: normalizeMetadata(req.Metadata), Attributes: req.Attributes,
		DeletionPolicy: req.DeletionPolicy, Encryption: req.Encryption, Generated: req.generated,
	}}
	if u := req.UsageLimits; u != nil {
		c := *u
		r.UsageLimits = &c
	}
	if r.State == Active {
		r.ActivationDate = &now
	}
	if d := req.ActivationDate; d != nil {
		t := d.UTC().Truncate(time.Microsecond)
		r.ActivationDate = &t
	}
	if len(req.Payload) > 0 {
		if err := s.seal(ctx, r, req.Payload, req.ContentType); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// buildDisk generates the material and the record of a planned disk
// secret, with the disk already registered as its consumer.
func (s *Service) buildDisk(ctx context.Context, who Identity, p *diskPlan) (*record, error) {
	material, err := s.generate(p)
	if err != nil {
		return nil, err
	}
	defer crypto.Zero(material)
	cr := p.create
	cr.Payload, cr.generated = material, true
	r, err := s.newRecord(ctx, who, p.project, cr)
	if err != nil {
		return nil, err
	}
	r.Consumers = []Consumer{p.disk}
	return r, nil
}

// CreateDiskSecret creates a fresh passphrase or symmetric key for one
// disk, records its encryption format and options, and registers the disk
// as its consumer, all in one transaction.
func (s *Service) CreateDiskSecret(ctx context.Context, who Identity, req DiskSecretRequest) (sec *Secret, err error) {
	ctx = s.begin(ctx, who, "create")
	defer func() { s.record(ctx, who, "create", idOf(sec), err) }()
	p, err := s.planDisk(who, req)
	if err != nil {
		return nil, err
	}
	hold, err := s.holdQuota(ctx, p.project, usage{qSecrets: 1, qConsumers: 1})
	if err != nil {
		return nil, err
	}
	defer func() { hold.release(err == nil) }()
	r, err := s.buildDisk(ctx, who, p)
	if err != nil {
		return nil, err
	}
	if err := s.insert(ctx, r); err != nil {
		return nil, err
	}
	return r.Secret.Clone(), nil
}
