package kms

import (
	"context"
	"errors"
)

// Usage Limits (KMIP 1.4 §3.21): how much a key may encrypt, decrypt and
// MAC, in bytes or in requests ("objects"). Set when the key is made; each
// Encrypt, Decrypt, MAC or MAC Verify counts its use first, in one audited write
// (usage_count), and is refused once the next use would pass the total.
// Only keys that have Usage Limits pay that write.

// Usage Limits units.
const (
	UsageBytes   = "byte"
	UsageObjects = "object"
)

// UsageLimits is a key's allowance and what it has used.
type UsageLimits struct {
	Total int64  `json:"total" cbor:"1,keyasint,omitempty"`
	Used  int64  `json:"used,omitempty" cbor:"2,keyasint,omitempty"`
	Unit  string `json:"unit" cbor:"3,keyasint,omitempty"`
}

// Remaining is what the key may still use.
func (u *UsageLimits) Remaining() int64 { return max(u.Total-u.Used, 0) }

func validUsageLimits(u *UsageLimits, typ SecretType) error {
	if u == nil {
		return nil
	}
	if typ != Symmetric {
		return Invalid("Usage Limits are kept for symmetric keys only")
	}
	if u.Total <= 0 || u.Used != 0 {
		return Invalid("Usage Limits need a positive total and nothing used")
	}
	if u.Unit != UsageBytes && u.Unit != UsageObjects {
		return Invalid("Usage Limits count bytes or objects, not %q", u.Unit)
	}
	return nil
}

// spendUsage counts one use (Encrypt, Decrypt, MAC, MAC Verify) of n bytes against the key's
// Usage Limits, before the operation runs (a use that then fails stays
// counted: the count never undercounts). Keys without limits: no write.
func (s *Service) spendUsage(ctx context.Context, who Identity, sec *Secret, n int) error {
	if sec.UsageLimits == nil {
		return nil
	}
	id := sec.ID
	ctx = s.begin(ctx, who, "usage_count")
	_, err := s.update(ctx, id, View{}, func(r *record) error {
		u := r.UsageLimits
		if u == nil {
			return errUnchanged
		}
		use := int64(1)
		if u.Unit == UsageBytes {
			use = int64(n)
		}
		if use > u.Remaining() {
			return Forbidden("secret %s has used its Usage Limits (%d of %d %ss)", id, u.Used, u.Total, u.Unit)
		}
		c := *u
		c.Used += use
		r.UsageLimits = &c
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	s.record(ctx, who, "usage_count", id, err)
	return err
}
