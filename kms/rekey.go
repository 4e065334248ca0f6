package kms

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// Re-key (KMIP 1.4 §4.4, §4.5): a replacement object with fresh material
// and the old one's attributes, written with the old object's change in one
// audited transaction. The name moves to the replacement, so a client that
// locates by name finds the new key while the old one stays usable by id
// (a disk still encrypted under it). Policy: a re-key creates a secret in
// the old key's project (secrets:post) and changes the old key (secret:put,
// it loses its name and gains a link), so it needs both rules; no new rule
// means no new knob for an operator to forget.

// RekeyRequest says how to re-key.
type RekeyRequest struct {
	// Offset, when set, dates the replacement's activation at now+Offset
	// and shifts its deactivation by as much; unset, the replacement keeps
	// the old key's dates (KMIP 1.4 §4.4).
	Offset *time.Duration
	// Link encodes the replacement links (the adapter's encoding; kms only
	// stores it): replacement true is the old object's link to peer, false
	// the new object's link back to the old one.
	Link func(replacement bool, peer string) (name, value string)
	// Carry, when set, chooses which of the old object's adapter
	// attributes the replacement keeps (links to other objects must not).
	Carry func(name string) bool
	// Shift, when set, moves a carried attribute holding a date (KMIP
	// Process Start and Protect Stop Date) by the activation's shift.
	Shift func(name, value string, by time.Duration) string
	// PairLink links the halves of a re-keyed pair, as KeyPairRequest.Link.
	PairLink func(toPublic bool, peer string) (name, value string)
	// Set is what the request sets on each replacement (the key; or the
	// private, then the public half), over what it carries from the old.
	Set []RekeySet
}

// RekeySet holds the attributes a re-key request gives a replacement.
// Algorithm and BitLength, when given, must be the old key's (KMIP copies
// them: a re-key changes the material, not the kind of key).
type RekeySet struct {
	Name           *string
	Algorithm      string
	BitLength      int
	Mode           string
	ActivationDate *time.Time // over the Offset's
	// Attributes (the adapter's) replace every carried instance of their
	// names.
	Attributes map[string]string
}

// Rekey replaces symmetric key or secret data id with a fresh one and
// returns the replacement.
func (s *Service) Rekey(ctx context.Context, who Identity, id string, req RekeyRequest) (sec *Secret, err error) {
	ctx = s.begin(ctx, who, "rekey")
	defer func() { s.record(ctx, who, "rekey", id, err) }()
	out, err := s.rekey(ctx, who, []string{id}, req)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// RekeyKeyPair replaces private key privID and its public key pubID (""
// when it has none) with a fresh pair linked like a new one.
func (s *Service) RekeyKeyPair(ctx context.Context, who Identity, privID, pubID string, req RekeyRequest) (priv, pub *Secret, err error) {
	ctx = s.begin(ctx, who, "rekey_key_pair")
	defer func() { s.record(ctx, who, "rekey_key_pair", privID, err) }()
	ids := []string{privID}
	if pubID != "" {
		ids = append(ids, pubID)
	}
	out, err := s.rekey(ctx, who, ids, req)
	if err != nil {
		return nil, nil, err
	}
	if len(out) < 2 {
		return out[0], nil, nil
	}
	return out[0], out[1], nil
}

// rekey replaces ids (one secret, or a private key and its public key) in
// one transaction, retried as a whole when any of them changed meanwhile.
func (s *Service) rekey(ctx context.Context, who Identity, ids []string, req RekeyRequest) ([]*Secret, error) {
	if err := who.Validate(); err != nil {
		return nil, err
	}
	// Queue with the writers of the key named; the other half is kept by
	// the compare-and-swap (two stripes could be one lock).
	defer lockWrites(ids[0])()
	pair := len(ids) > 1 || req.PairLink != nil
	var hold quotaHold
	var err error
	defer func() { hold.release(err == nil) }()
	var out []*Secret
	err = s.mutate(ctx, "", Conflict("secret %s is being changed concurrently; try again", ids[0]), func() (edit, error) {
		olds := make([]loaded, len(ids))
		for i, id := range ids {
			l, err := s.read(ctx, id, anyState)
			if err != nil {
				return edit{}, err
			}
			if err := s.rekeyable(who, l.rec.Secret, pair, i); err != nil {
				return edit{}, err
			}
			olds[i] = l
		}
		if pair && len(ids) == 2 {
			p, u := olds[0].rec, olds[1].rec
			if p.Project != u.Project || p.Algorithm != u.Algorithm || p.BitLength != u.BitLength {
				return edit{}, Invalid("secrets %s and %s are not the halves of one key pair", p.ID, u.ID)
			}
		}
		if hold.pc == nil {
			// One new secret per old one (a private key without its public
			// half gets a replacement private key only).
			h, err := s.holdQuota(ctx, olds[0].rec.Project, usage{qSecrets: len(ids)})
			if err != nil {
				return edit{}, err
			}
			hold = h
		}
		e, news, err := s.rekeyEdit(ctx, who, olds, pair, req)
		if err != nil {
			return edit{}, err
		}
		out = news
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	for _, n := range out[1:] {
		s.owners.Store(n.ID, n.Project)
	}
	for i := range out {
		out[i] = out[i].Clone()
	}
	return out, nil
}

// rekeyable checks one old object: the caller may create in its project
// and change it, it is of a kind this re-key replaces, and neither
// destroyed nor compromised (KMIP: Wrong Key Lifecycle State).
func (s *Service) rekeyable(who Identity, old *Secret, pair bool, i int) error {
	if err := s.allowSecret(SecretUpdate, who, old); err != nil {
		return err
	}
	if err := s.canCreateIn(SecretCreate, who, old.Project); err != nil {
		return err
	}
	want := map[SecretType]bool{Symmetric: !pair, Passphrase: !pair, Private: pair && i == 0, Public: pair && i == 1}
	if !want[old.Type] {
		if pair {
			return Invalid("secret %s is a %s, not the %s key of a pair", old.ID, old.Type, [2]SecretType{Private, Public}[min(i, 1)])
		}
		return Invalid("secret %s is a %s: Re-key takes symmetric keys and secret data (key pairs: Re-key Key Pair)", old.ID, old.Type)
	}
	switch {
	case old.State == Destroyed:
		return WrongState("secret %s is destroyed and cannot be re-keyed", old.ID)
	case old.State == Compromised:
		return WrongState("secret %s is compromised and cannot be re-keyed", old.ID)
	case old.BitLength == 0 && old.Type != Passphrase:
		return Invalid("secret %s has no length to re-key at", old.ID)
	}
	return nil
}

// rekeyEdit builds the transaction: every replacement's creation and every
// old object's update (name gone, replacement link added).
func (s *Service) rekeyEdit(ctx context.Context, who Identity, olds []loaded, pair bool, req RekeyRequest) (edit, []*Secret, error) {
	news := make([]*record, len(olds))
	var priv []byte
	defer func() { crypto.Zero(priv) }()
	var pub []byte
	if pair {
		var err error
		if priv, pub, err = generatePair(olds[0].rec.Algorithm, olds[0].rec.BitLength); err != nil {
			return edit{}, nil, err
		}
	}
	for i, l := range olds {
		var set RekeySet
		if i < len(req.Set) {
			set = req.Set[i]
		}
		r, err := s.replacement(ctx, who, l.rec, pair, [2][]byte{priv, pub}[min(i, 1)], req, set)
		if err != nil {
			return edit{}, nil, err
		}
		news[i] = r
	}
	if pair && len(news) == 2 && req.PairLink != nil {
		link(news[0].Secret, req.PairLink, true, news[1].ID)
		link(news[1].Secret, req.PairLink, false, news[0].ID)
	}
	var all edit
	all.id = news[0].ID
	for i, l := range olds {
		r := news[i]
		b, err := s.encodeRecord(ctx, r, 1)
		if err != nil {
			return edit{}, nil, err
		}
		e := s.creation(r, b, joinDetail("re-key of secret "+l.rec.ID, secretDiff(nil, r.Secret)))
		all.detail = joinDetail(all.detail, e.detail)
		all.cmps = append(all.cmps, e.cmps...)
		all.ops = append(all.ops, e.ops...)
		if i == 0 {
			all.after = e.after
		}

		before := l.rec.Secret
		o := l.rec.clone()
		o.Name, o.Updated = "", s.clock()
		if req.Link != nil {
			link(o.Secret, req.Link, true, r.ID)
		}
		ob, err := s.encodeRecord(ctx, o, l.version+1)
		if err != nil {
			return edit{}, nil, err
		}
		key := recordKey(o.Project, o.ID)
		all.detail = joinDetail(all.detail, "secret "+o.ID+": "+secretDiff(before, o.Secret))
		all.cmps = append(all.cmps, store.Cmp{Key: key, Version: l.version})
		all.ops = append(all.ops, store.Put(key, ob))
		all.ops = append(all.ops, aclIndexOps(before, o.Secret)...)
		all.ops = append(all.ops, s.listIndexOps(before, o.Secret)...)
	}
	out := make([]*Secret, len(news))
	for i, r := range news {
		out[i] = r.Secret
	}
	return all, out, nil
}

// replacement is old's replacement record: fresh material (material, for
// a pair half), the old object's attributes, dates shifted by the offset.
func (s *Service) replacement(ctx context.Context, who Identity, old *record, pair bool, material []byte, req RekeyRequest, set RekeySet) (*record, error) {
	now := s.clock()
	if set.Algorithm != "" && normAlgorithm(set.Algorithm) != normAlgorithm(old.Algorithm) {
		return nil, InvalidField("secret", "algorithm", "a re-key keeps the algorithm: secret %s is %s, not %s", old.ID, old.Algorithm, set.Algorithm)
	}
	if set.BitLength != 0 && set.BitLength != old.BitLength {
		return nil, InvalidField("secret", "bit_length", "a re-key keeps the length: secret %s is %d bits, not %d", old.ID, old.BitLength, set.BitLength)
	}
	// With an Offset every date of the old key moves by as much as its
	// activation does (KMIP 1.4 §4.4); without one they are kept.
	var act *time.Time
	var shift time.Duration
	if req.Offset != nil {
		a := now.Add(*req.Offset).UTC().Truncate(time.Microsecond)
		act = &a
		if old.ActivationDate != nil {
			shift = a.Sub(*old.ActivationDate)
		}
	}
	attrs, names := map[string]string{}, setNames(set.Attributes)
	for k, v := range old.Attributes {
		name, _ := ParseInstanceKey(k)
		if req.Carry != nil && !req.Carry(name) {
			continue
		}
		if _, given := names[name]; given {
			continue
		}
		if shift != 0 && req.Shift != nil {
			v = req.Shift(name, v, shift)
		}
		attrs[k] = v
	}
	attrs = reindex(attrs)
	for k, v := range set.Attributes {
		attrs[k] = v
	}
	if err := keepProtection(old.Attributes, &Secret{ID: old.ID, Attributes: attrs}); err != nil {
		return nil, err
	}
	cr := CreateRequest{
		Name: old.Name, Type: old.Type, Algorithm: old.Algorithm, BitLength: old.BitLength, Mode: old.Mode,
		Metadata: maps.Clone(old.Metadata), Attributes: attrs, DeletionPolicy: old.DeletionPolicy, State: PreActive,
	}
	if set.Name != nil {
		cr.Name = *set.Name
	}
	if set.Mode != "" {
		cr.Mode = set.Mode
	}
	if len(cr.Attributes) == 0 {
		cr.Attributes = nil
	}
	if old.Expiration != nil && old.Expiration.After(now) {
		t := *old.Expiration
		cr.Expiration = &t
	}
	if !pair {
		var err error
		if material, err = s.generateMaterial(&cr, nil); err != nil {
			return nil, err
		}
		defer crypto.Zero(material)
	} else {
		cr.ContentType = ContentTypeBinary
	}
	cr.Payload, cr.generated = material, true // fresh material from the server's generator
	r, err := s.newRecord(ctx, who, old.Project, cr)
	if err != nil {
		return nil, err
	}
	if old.Encryption != nil {
		e := *old.Encryption
		r.Encryption = &e
	}
	if old.ACL != nil { // whoever could read the old key reads its replacement
		a := *old.ACL
		a.Users = slices.Clone(old.ACL.Users)
		r.ACL = &a
	}
	r.ActivationDate, r.DeactivationDate = old.ActivationDate, old.DeactivationDate
	if act != nil {
		r.ActivationDate = act
		if old.DeactivationDate != nil && shift != 0 {
			d := old.DeactivationDate.Add(shift)
			r.DeactivationDate = &d
		}
	}
	if set.ActivationDate != nil {
		a := set.ActivationDate.UTC()
		r.ActivationDate = &a
	}
	switch {
	case r.DeactivationDate != nil && !r.DeactivationDate.After(now):
		r.State = Deactivated
	case r.ActivationDate != nil && !r.ActivationDate.After(now):
		r.State = Active
	}
	if req.Link != nil {
		link(r.Secret, req.Link, false, old.ID)
	}
	return r, nil
}

// setNames are the attribute names among adapter attribute keys.
func setNames(attrs map[string]string) map[string]struct{} {
	out := make(map[string]struct{}, len(attrs))
	for k := range attrs {
		n, _ := ParseInstanceKey(k)
		out[n] = struct{}{}
	}
	return out
}

// reindex numbers the instances of each attribute from 0 again once some
// were left behind, so the replacement has no gaps.
func reindex(attrs map[string]string) map[string]string {
	byName := map[string]map[int32]string{}
	for k, v := range attrs {
		n, i := ParseInstanceKey(k)
		if byName[n] == nil {
			byName[n] = map[int32]string{}
		}
		byName[n][i] = v
	}
	out := make(map[string]string, len(attrs))
	for n, inst := range byName {
		idx := make([]int32, 0, len(inst))
		for i := range inst {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		for j, i := range idx {
			out[InstanceKey(n, int32(j))] = inst[i]
		}
	}
	return out
}
