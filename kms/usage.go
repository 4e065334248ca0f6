package kms

// Cryptographic usage (KMIP Check, and every operation that uses a key's
// material on the server): one rule, here.

// Usable reports whether the secret may be used now for every use in want:
// it must be active, and each of its usage masks must allow all of want.
// A secret with no mask (one made over REST) allows every use its type
// has; a stored mask that cannot be read allows nothing.
func (s *Secret) Usable(want KeyUse) error {
	if s.State != Active {
		return WrongState("secret %s is %s: only an Active key can be used", s.ID, s.State)
	}
	for _, in := range s.Instances(AttrUsageMask) {
		if m, ok := parseUsageMask(in.Value); !ok || m&want != want {
			return newErr(KindUsage, "the usage mask of secret %s does not allow %s", s.ID, useName(want))
		}
	}
	return nil
}
