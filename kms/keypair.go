package kms

import (
	"context"
	gocrypto "crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strconv"
	"strings"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// Asymmetric key pairs. Both halves are secrets like any other (sealed,
// tagged, audited); a pair is made in one transaction so a client never
// sees one half without the other. The private key is stored as PKCS#8
// PEM and the public key as X.509 SubjectPublicKeyInfo PEM: the forms
// Barbican clients read, and from which KMIP converts.

// KeyPairRequest asks for a new key pair. Private and Public describe each
// half (name, state, attributes, metadata); their Type, Algorithm,
// BitLength and Payload are set here.
type KeyPairRequest struct {
	Algorithm string // "rsa" or "ec"
	// BitLength is the RSA modulus (2048, 3072, 4096) or the EC curve
	// size (256, 384, 521 for P-256, P-384, P-521).
	BitLength int
	Private   CreateRequest
	Public    CreateRequest
	// Link, when set, names the attribute that links one half to the
	// other (KMIP Link): toPublic says the attribute goes on the private
	// key and points at the public one. The value is the adapter's
	// encoding; kms only stores it.
	Link func(toPublic bool, peer string) (name, value string)
}

// KeyPairAlgorithms lists what CreateKeyPair generates, for adapters'
// discovery answers: algorithm → sizes.
var KeyPairAlgorithms = map[string][]int{"rsa": {2048, 3072, 4096}, "ec": {256, 384, 521}}

var curves = map[int]elliptic.Curve{256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}

// CreateKeyPair generates a key pair and stores both halves, linked, in
// one audited transaction.
func (s *Service) CreateKeyPair(ctx context.Context, who Identity, req KeyPairRequest) (priv, pub *Secret, err error) {
	ctx = s.begin(ctx, who, "create_key_pair")
	defer func() { s.record(ctx, who, "create_key_pair", idOf(priv), err) }()
	if err := who.Validate(); err != nil {
		return nil, nil, err
	}
	if err := s.allowProject(SecretCreate, who); err != nil {
		return nil, nil, err
	}
	if err := s.validatePair(&req); err != nil {
		return nil, nil, err
	}
	hold, err := s.holdQuota(ctx, who.Project, usage{qSecrets: 2})
	if err != nil {
		return nil, nil, err
	}
	defer func() { hold.release(err == nil) }()
	rp, ru, extra, err := s.buildPair(ctx, who, req)
	if err != nil {
		return nil, nil, err
	}
	// The durable record names both halves (its secret_id is the private key).
	changeOf(ctx).detail = pairDetail(rp, ru)
	if err := s.insert(ctx, rp, extra...); err != nil {
		return nil, nil, err
	}
	s.owners.Store(ru.ID, ru.Project)
	return rp.Secret.Clone(), ru.Secret.Clone(), nil
}

// validatePair checks the algorithm and size and completes each half's
// request.
func (s *Service) validatePair(req *KeyPairRequest) error {
	req.Algorithm = strings.ToLower(req.Algorithm)
	sizes, ok := KeyPairAlgorithms[req.Algorithm]
	if !ok {
		return Invalid("key pairs are rsa or ec, not %q", req.Algorithm)
	}
	if !containsInt(sizes, req.BitLength) {
		return Invalid("a %s key pair is of %v bits, not %d", req.Algorithm, sizes, req.BitLength)
	}
	for i, h := range []*CreateRequest{&req.Private, &req.Public} {
		if len(h.Payload) > 0 {
			return Invalid("a generated key pair takes no payload")
		}
		h.Type = [2]SecretType{Private, Public}[i]
		h.Algorithm, h.BitLength, h.ContentType = req.Algorithm, req.BitLength, ContentTypeBinary
		if err := s.validateCreate(h); err != nil {
			return err
		}
	}
	return nil
}

// buildPair generates a validated pair and returns both sealed records:
// the private one to insert, and the store writes of the public one to
// add to that insert's transaction.
func (s *Service) buildPair(ctx context.Context, who Identity, req KeyPairRequest) (rp, ru *record, extra []store.Op, err error) {
	privPEM, pubPEM, err := generatePair(req.Algorithm, req.BitLength)
	if err != nil {
		return nil, nil, nil, err
	}
	defer crypto.Zero(privPEM)
	req.Private.Payload, req.Public.Payload = privPEM, pubPEM
	req.Private.generated, req.Public.generated = true, true
	if rp, err = s.newRecord(ctx, who, who.Project, req.Private); err != nil {
		return nil, nil, nil, err
	}
	if ru, err = s.newRecord(ctx, who, who.Project, req.Public); err != nil {
		return nil, nil, nil, err
	}
	if req.Link != nil {
		link(rp.Secret, req.Link, true, ru.ID)
		link(ru.Secret, req.Link, false, rp.ID)
	}
	b, err := s.encodeRecord(ctx, ru, 1)
	if err != nil {
		return nil, nil, nil, err
	}
	extra = append([]store.Op{store.Put(recordKey(ru.Project, ru.ID), b), store.Put(pointerKey(ru.ID), []byte(ru.Project))},
		aclIndexOps(nil, ru.Secret)...)
	extra = append(extra, s.listIndexOps(nil, ru.Secret)...)
	return rp, ru, extra, nil
}

func pairDetail(rp, ru *record) string {
	return "project " + rp.Project + "; " + rp.Algorithm + " " + strconv.Itoa(rp.BitLength) +
		" key pair: private key " + rp.ID + ", public key " + ru.ID
}

func link(sec *Secret, f func(bool, string) (string, string), toPublic bool, peer string) {
	name, value := f(toPublic, peer)
	if name == "" {
		return
	}
	if sec.Attributes == nil {
		sec.Attributes = map[string]string{}
	}
	// A Link the client asked for keeps its index; the pair's link comes after.
	i := int32(0)
	for sec.Attributes[InstanceKey(name, i)] != "" {
		i++
	}
	sec.Attributes[InstanceKey(name, i)] = value
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// generatePair makes a key pair and returns it as PEM: PKCS#8 private key
// and SubjectPublicKeyInfo public key. The caller zeroes the private PEM.
func generatePair(alg string, bits int) (privPEM, pubPEM []byte, err error) {
	var key gocrypto.Signer
	switch alg {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, bits)
	default:
		key, err = ecdsa.GenerateKey(curves[bits], rand.Reader)
	}
	if err != nil {
		return nil, nil, internal("generate key pair", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, internal("encode private key", err)
	}
	defer crypto.Zero(der)
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, internal("encode public key", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}
