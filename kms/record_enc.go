package kms

import (
	"time"

	"github.com/keywarden/keywarden/crypto"
)

// appendRecord appends r's CBOR body to b: the bytes recordEnc.Marshal
// makes (struct field order, the same omitempty rules, zero times as
// null), written without reflection because every create and update
// encodes a record. The nested values without cbor tags (ACL, Consumer,
// DiskEncryption) are keyed by their JSON names, as recordEnc keys them.
// TestRecordEncoderMatchesCBOR fails when a field is added to the record
// but not here.
func appendRecord(b []byte, r *record) []byte {
	// The field count is known at the end; keep two bytes for the head.
	start := len(b)
	b = append(b, 0, 0)
	n := 0
	if s := r.Secret; s != nil {
		b, n = cborSecret(b, s)
	}
	if e := r.Sealed; e != nil {
		b = cborKey(b, 40)
		b = cborEnvelope(b, e)
		n++
	}
	if n < 24 { // one-byte head: drop the spare byte
		b[start+1] = 0xa0 | byte(n)
		return append(b[:start], b[start+1:]...)
	}
	b[start], b[start+1] = 0xb8, byte(n)
	return b
}

func cborSecret(b []byte, s *Secret) ([]byte, int) {
	n := 0
	str := func(k uint64, v string) {
		if v != "" {
			b = cborText(cborKey(b, k), v)
			n++
		}
	}
	flag := func(k uint64, v bool) {
		if v {
			b = append(cborKey(b, k), 0xf5)
			n++
		}
	}
	when := func(k uint64, t *time.Time) {
		if t != nil {
			b = cborTime(cborKey(b, k), *t)
			n++
		}
	}
	strMap := func(k uint64, m map[string]string) {
		if len(m) > 0 {
			b = cborHead(cborKey(b, k), 5, uint64(len(m)))
			for mk, mv := range m {
				b = cborText(cborText(b, mk), mv)
			}
			n++
		}
	}
	nested := func(k uint64, present bool, enc func([]byte) []byte) {
		if present {
			b = enc(cborKey(b, k))
			n++
		}
	}
	str(1, s.ID)
	str(2, s.Project)
	str(3, s.Creator)
	str(4, s.CreatorSource)
	str(5, s.Name)
	str(6, string(s.Type))
	str(7, s.Algorithm)
	if s.BitLength != 0 {
		b = cborInt(cborKey(b, 8), int64(s.BitLength))
		n++
	}
	str(9, s.Mode)
	str(10, s.ContentType)
	when(11, s.Expiration)
	str(12, string(s.State))
	when(13, &s.Created) // a time.Time is never "empty" to omitempty
	when(14, &s.Updated)
	when(15, s.ActivationDate)
	when(16, s.DeactivationDate)
	when(17, s.CompromiseDate)
	when(18, s.DestroyDate)
	strMap(19, s.Metadata)
	strMap(20, s.Attributes)
	nested(21, s.ACL != nil, func(b []byte) []byte { return cborACL(b, s.ACL) })
	nested(22, len(s.Consumers) > 0, func(b []byte) []byte { return cborConsumers(b, s.Consumers) })
	str(23, string(s.DeletionPolicy))
	str(24, s.ClonedFrom)
	nested(25, s.Encryption != nil, func(b []byte) []byte { return cborEncryption(b, s.Encryption) })
	flag(26, s.HasPayload)
	str(29, s.KeyPassphrase)
	if d := s.Digest; d != nil {
		b = cborDigest(cborKey(b, 27), d)
		n++
	}
	flag(28, s.Generated)
	flag(30, s.AlwaysSensitive)
	flag(31, s.NeverExtractable)
	flag(32, s.Fresh)
	nested(33, s.Revocation != nil, func(b []byte) []byte { return cborRevocation(b, s.Revocation) })
	nested(34, s.UsageLimits != nil, func(b []byte) []byte { return cborUsageLimits(b, s.UsageLimits) })
	return b, n
}

// cborMap appends a map of n members, each written by its key only when
// its value is present (the map head is counted first).
type member struct {
	key     string
	present bool
	enc     func([]byte) []byte
}

func cborMap(b []byte, ms ...member) []byte {
	n := 0
	for _, m := range ms {
		if m.present {
			n++
		}
	}
	b = cborHead(b, 5, uint64(n))
	for _, m := range ms {
		if m.present {
			b = m.enc(cborText(b, m.key))
		}
	}
	return b
}

func textEnc(v string) func([]byte) []byte    { return func(b []byte) []byte { return cborText(b, v) } }
func timeEnc(v time.Time) func([]byte) []byte { return func(b []byte) []byte { return cborTime(b, v) } }

func cborACL(b []byte, a *ACL) []byte {
	return cborMap(b,
		member{"users", len(a.Users) > 0, func(b []byte) []byte {
			b = cborHead(b, 4, uint64(len(a.Users)))
			for _, u := range a.Users {
				b = cborText(b, u)
			}
			return b
		}},
		member{"source", a.Source != "", textEnc(a.Source)},
		member{"project_access", true, func(b []byte) []byte { return cborBool(b, a.ProjectAccess) }},
		member{"created", true, timeEnc(a.Created)},
		member{"updated", true, timeEnc(a.Updated)})
}

func cborConsumers(b []byte, cs []Consumer) []byte {
	b = cborHead(b, 4, uint64(len(cs)))
	for _, c := range cs {
		b = cborMap(b,
			member{"service", true, textEnc(c.Service)},
			member{"resource_type", true, textEnc(c.ResourceType)},
			member{"resource_id", true, textEnc(c.ResourceID)},
			member{"created", true, timeEnc(c.Created)},
			member{"project", c.Project != "", textEnc(c.Project)})
	}
	return b
}

func cborEncryption(b []byte, e *DiskEncryption) []byte {
	return cborMap(b,
		member{"format", e.Format != "", textEnc(e.Format)},
		member{"cipher", e.Cipher != "", textEnc(e.Cipher)},
		member{"key_size", e.KeySize != 0, func(b []byte) []byte { return cborInt(b, int64(e.KeySize)) }})
}

// Revocation and UsageLimits have integer keys (cbor tags), all omitempty.
func cborRevocation(b []byte, r *Revocation) []byte {
	n := 0
	for _, p := range []bool{r.Code != 0, r.Message != "", r.Occurred != nil} {
		if p {
			n++
		}
	}
	b = cborHead(b, 5, uint64(n))
	if r.Code != 0 {
		b = cborInt(append(b, 0x01), int64(r.Code))
	}
	if r.Message != "" {
		b = cborText(append(b, 0x02), r.Message)
	}
	if r.Occurred != nil {
		b = cborTime(append(b, 0x03), *r.Occurred)
	}
	return b
}

func cborUsageLimits(b []byte, u *UsageLimits) []byte {
	n := 0
	for _, p := range []bool{u.Total != 0, u.Used != 0, u.Unit != ""} {
		if p {
			n++
		}
	}
	b = cborHead(b, 5, uint64(n))
	if u.Total != 0 {
		b = cborInt(append(b, 0x01), u.Total)
	}
	if u.Used != 0 {
		b = cborInt(append(b, 0x02), u.Used)
	}
	if u.Unit != "" {
		b = cborText(append(b, 0x03), u.Unit)
	}
	return b
}

func cborBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xf5)
	}
	return append(b, 0xf4)
}

func cborDigest(b []byte, d *MaterialDigest) []byte {
	if d.PEMType == "" {
		return cborBytes(append(b, 0xa1, 0x01), d.SHA256)
	}
	b = cborBytes(append(b, 0xa2, 0x01), d.SHA256)
	return cborText(append(b, 0x02), d.PEMType)
}

func cborEnvelope(b []byte, e *crypto.Envelope) []byte {
	b = append(b, 0xa3, 0x01)
	b = cborInt(b, int64(e.Version))
	b = cborBytes(append(b, 0x02), e.WrappedDEK)
	return cborBytes(append(b, 0x03), e.Ciphertext)
}

func cborBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, 0xf6)
	}
	return append(cborHead(b, 2, uint64(len(v))), v...)
}

func cborKey(b []byte, k uint64) []byte { return cborHead(b, 0, k) }

func cborText(b []byte, s string) []byte {
	return append(cborHead(b, 3, uint64(len(s))), s...)
}

func cborTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0xf6)
	}
	// RFC 3339 with nanoseconds is at most 35 bytes: a one-byte-length head.
	var buf [64]byte
	s := t.AppendFormat(buf[:0], time.RFC3339Nano)
	return append(cborHead(b, 3, uint64(len(s))), s...)
}

func cborInt(b []byte, v int64) []byte {
	if v < 0 {
		return cborHead(b, 1, uint64(-1-v))
	}
	return cborHead(b, 0, uint64(v))
}

// cborHead appends a CBOR head of major type m and argument v, in its
// shortest form.
func cborHead(b []byte, m byte, v uint64) []byte {
	m <<= 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xff:
		return append(b, m|24, byte(v))
	case v <= 0xffff:
		return append(b, m|25, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		return append(b, m|26, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, m|27, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
