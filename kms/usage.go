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

// Attribute names of a key's use periods (KMIP 1.x spelling), kept by the
// KMIP adapter as DateTimes ("d:<unix seconds>").
const (
	AttrProcessStart = "Process Start Date"
	AttrProtectStop  = "Protect Stop Date"
)

// protects are the uses that apply protection (KMIP Protect Stop Date
// ends them); the others process protected data (Process Start Date
// begins them).
const protects = UseSign | UseEncrypt | UseMACGenerate

// inUsePeriod refuses a use outside the key's periods: applying protection
// after its Protect Stop Date, processing before its Process Start Date.
func (s *Secret) inUsePeriod(want KeyUse, now time.Time) error {
	if want&protects != 0 {
		if t, ok := storedDate(s.Attributes[AttrProtectStop]); ok && !now.Before(t) {
			return Forbidden("secret %s: its Protect Stop Date has passed: it no longer applies protection", s.ID)
		}
	}
	if want&^protects != 0 {
		if t, ok := storedDate(s.Attributes[AttrProcessStart]); ok && now.Before(t) {
			return Forbidden("secret %s: its Process Start Date has not come: it does not process data yet", s.ID)
		}
	}
	return nil
}

func storedDate(stored string) (time.Time, bool) {
	if !strings.HasPrefix(stored, "d:") {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(stored[2:], 10, 64)
	return time.Unix(n, 0), err == nil
}
