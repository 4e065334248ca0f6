package kms

// Cryptographic usage (KMIP Check, and any operation that uses a key's
// material): the rule is kms's, the mask's encoding is the adapter's.

// AttrUsageMask is the attribute that bounds what an object may be used
// for, one bit per use (KMIP Cryptographic Usage Mask).
const AttrUsageMask = "Cryptographic Usage Mask"

// Usable reports whether the secret may be used now for every use in want:
// it must be active, and each of its usage masks must allow all of want.
// maskOf reads a stored mask value; one it cannot read allows nothing.
func (s *Secret) Usable(want uint32, maskOf func(stored string) uint32) error {
	if s.State != Active {
		return WrongState("the object is %s, not active", s.State)
	}
	for _, in := range s.Instances(AttrUsageMask) {
		if maskOf(in.Value)&want != want {
			return newErr(KindUsage, "the object's usage mask does not allow all of 0x%x", want)
		}
	}
	return nil
}
