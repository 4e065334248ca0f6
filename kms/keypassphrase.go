package kms

// Passphrase-protected key pairs (Barbican asymmetric orders with a
// pass_phrase). Barbican stores the private key PKCS#8-encrypted with the
// passphrase and the passphrase as a third secret. Here the private key is
// stored as every key pair is, unencrypted PKCS#8 under the root key, and
// encrypted with its passphrase when REST serves it (ExportPayload):
//
//   - the pair stays the same object over both protocols: KMIP Get returns
//     it in a KMIP key format (none carries a passphrase-encrypted PKCS#8)
//     and KMIP Sign and Decrypt use it, which a stored encrypted blob would
//     not allow;
//   - stored encrypted it would be no safer: the passphrase is a secret of
//     the same project beside it, opened by the same root key. What the
//     passphrase protects is the key once it has left over REST, and there
//     Barbican's clients get what Barbican gives them, an "ENCRYPTED
//     PRIVATE KEY" PEM.

import (
	"context"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// maxPassPhrase bounds an order's pass_phrase.
const maxPassPhrase = 1024

// buildKeyPassphrase makes the passphrase secret of an asymmetric order
// (named, expiring and deleted as the pair's halves) and the ops that write
// it.
func (s *Service) buildKeyPassphrase(ctx context.Context, who Identity, half CreateRequest, pass []byte) (*record, []store.Op, error) {
	half.Type, half.Payload, half.ContentType = Passphrase, pass, ContentTypeText
	r, err := s.newRecord(ctx, who, who.Project, half)
	if err != nil {
		return nil, nil, err
	}
	b, err := s.encodeRecord(ctx, r, 1)
	if err != nil {
		return nil, nil, err
	}
	ops := append([]store.Op{store.Put(recordKey(r.Project, r.ID), b), store.Put(pointerKey(r.ID), []byte(r.Project))},
		aclIndexOps(nil, r.Secret)...)
	return r, append(ops, s.listIndexOps(nil, r.Secret)...), nil
}

// ExportPayload is GetPayload for REST: a private key ordered with a
// pass_phrase comes encrypted with it (PKCS#8, PBES2), as Barbican serves
// it; anything else as stored. It returns the secret's payload content
// type (all REST needs of it: the record is not cloned). The caller zeroes
// the payload.
func (s *Service) ExportPayload(ctx context.Context, who Identity, id string) (contentType string, payload []byte, err error) {
	sec, pt, err := s.servePayload(ctx, who, id, nil, true)
	if err != nil {
		return "", nil, err
	}
	if sec.KeyPassphrase == "" {
		return sec.ContentType, pt, nil
	}
	defer crypto.Zero(pt)
	// The passphrase is used, not shown: read as the key's owner would,
	// whoever may read the key.
	l, err := s.read(ctx, sec.KeyPassphrase, View{})
	if KindOf(err) == KindNotFound || (err == nil && (!l.rec.HasPayload || l.rec.Sealed == nil)) {
		return "", nil, Conflict("the passphrase secret %s of this private key was deleted: REST cannot serve the key encrypted "+
			"(KMIP Get still returns it)", sec.KeyPassphrase)
	}
	if err != nil {
		return "", nil, err
	}
	pass, err := s.keys.Open(ctx, l.rec.binding(), l.rec.Sealed)
	if err != nil {
		return "", nil, internal("open", err)
	}
	defer crypto.Zero(pass)
	enc, err := crypto.EncryptPKCS8PEM(pt, pass)
	if err != nil {
		return "", nil, internal("encrypt the private key with its passphrase", err)
	}
	return sec.ContentType, enc, nil
}
