package kms

import (
	"strconv"
	"strings"
	"time"
)

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

// Attribute names of the protection period (KMIP 1.4 §3.25, §3.26).
const (
	AttrProcessStartDate = "Process Start Date"
	AttrProtectStopDate  = "Protect Stop Date"
)

// protects are the uses that apply protection; the others process it.
const protects = UseEncrypt | UseSign | UseMACGenerate

// inPeriod refuses a use outside the key's protection period: no applying
// protection (Encrypt, Sign, MAC) after its Protect Stop Date, no
// processing (Decrypt, Verify, MAC Verify) before its Process Start Date.
func (s *Secret) inPeriod(want KeyUse, now time.Time) error {
	date := func(name string) (time.Time, bool) {
		v, ok := s.Attributes[name]
		if !ok || !strings.HasPrefix(v, "d:") {
			return time.Time{}, false
		}
		n, err := strconv.ParseInt(v[2:], 10, 64)
		return time.Unix(n, 0), err == nil
	}
	if t, ok := date(AttrProtectStopDate); ok && want&protects != 0 && now.After(t) {
		return Forbidden("secret %s is past its Protect Stop Date: it no longer applies protection", s.ID)
	}
	if t, ok := date(AttrProcessStartDate); ok && want&^protects != 0 && now.Before(t) {
		return Forbidden("secret %s is before its Process Start Date: it does not process protected data yet", s.ID)
	}
	return nil
}
