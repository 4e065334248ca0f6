package kms

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/google/uuid"
	"github.com/keywarden/keywarden/kms/store"
)

// OrderAsymmetric is Barbican's asymmetric order: an RSA key pair in an
// rsa container (castellan's create_key_pair). The pair is made by the
// same code as KMIP Create Key Pair, so it is the same object over both
// protocols; the secrets, the container and the order are one
// transaction. With a pass_phrase, as in Barbican, the container gets a
// third secret, private_key_passphrase, and REST serves the private key
// encrypted with it (keypassphrase.go).
const OrderAsymmetric OrderType = "asymmetric"

// asymmetricSizes are the RSA sizes an asymmetric order may ask for.
var asymmetricSizes = []int{2048, 3072, 4096}

func (s *Service) createAsymmetricOrder(ctx context.Context, who Identity, req OrderRequest) (o *Order, err error) {
	alg := strings.ToLower(req.Algorithm)
	if alg != "rsa" {
		return nil, Invalid("asymmetric orders make rsa key pairs, not %q", req.Algorithm)
	}
	if !containsInt(asymmetricSizes, req.BitLength) {
		return nil, Invalid("an rsa key pair is of %v bits, not %d", asymmetricSizes, req.BitLength)
	}
	if req.Consumer != nil || req.Encryption != nil || req.Passphrase != nil {
		return nil, Invalid("an asymmetric order takes no disk extension")
	}
	half := CreateRequest{Name: req.Name, Expiration: req.Expiration, Metadata: req.Metadata,
		DeletionPolicy: req.DeletionPolicy}
	pair := KeyPairRequest{Algorithm: alg, BitLength: req.BitLength, Private: half, Public: half}
	if err := s.validatePair(&pair); err != nil {
		return nil, err
	}
	if len(req.PassPhrase) > maxPassPhrase {
		return nil, Invalid("pass_phrase is longer than %d bytes", maxPassPhrase)
	}
	nSecrets := 2
	if len(req.PassPhrase) > 0 {
		nSecrets = 3
	}
	hold, err := s.holdQuota(ctx, who.Project, usage{qSecrets: nSecrets, qOrders: 1, qContainers: 1})
	if err != nil {
		return nil, err
	}
	defer func() { hold.release(err == nil) }()
	rp, ru, ops, err := s.buildPair(ctx, who, pair)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	c := &Container{
		ID: newSecretID(), Project: who.Project, Creator: who.User, CreatorSource: who.Source, Name: req.Name,
		Type: ContainerRSA, Created: now, Updated: now,
		Secrets: []ContainerSecret{{Name: "private_key", SecretID: rp.ID}, {Name: "public_key", SecretID: ru.ID}},
	}
	detail := pairDetail(rp, ru)
	if len(req.PassPhrase) > 0 {
		pp, ppOps, err := s.buildKeyPassphrase(ctx, who, half, req.PassPhrase)
		if err != nil {
			return nil, err
		}
		rp.KeyPassphrase = pp.ID
		ops = append(ops, ppOps...)
		c.Secrets = append(c.Secrets, ContainerSecret{Name: "private_key_passphrase", SecretID: pp.ID})
		detail = joinDetail(detail, "passphrase "+pp.ID)
	}
	cb, err := s.encodeTagged(ctx, c.Project, "container:"+c.ID, 1, c)
	if err != nil {
		return nil, err
	}
	o = &Order{
		ID: uuid.NewString(), Project: who.Project, Creator: who.User, CreatorSource: who.Source, Type: req.Type,
		Status: OrderStatusActive, ContainerID: c.ID, Created: now, Updated: now, Request: req,
	}
	o.Request.Algorithm = alg
	ob, err := json.Marshal(o)
	if err != nil {
		return nil, internal("encode", err)
	}
	ops = append(ops, store.Put(containerKey(c.Project, c.ID), cb), store.Put(containerPointerKey(c.ID), []byte(c.Project)),
		store.Put(orderKey(o.Project, o.ID), ob), store.Put(orderPointerKey(o.ID), []byte(o.Project)))
	changeOf(ctx).detail = joinDetail(detail, "rsa container "+c.ID, "order "+o.ID)
	if err := s.insert(ctx, rp, ops...); err != nil {
		return nil, err
	}
	s.owners.Store(ru.ID, ru.Project)
	if rp.KeyPassphrase != "" {
		s.owners.Store(rp.KeyPassphrase, rp.Project)
	}
	return o, nil
}
