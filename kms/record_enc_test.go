package kms

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/crypto"
)

// fillValue gives v a non-zero value of its type, whatever the type: a
// field of a kind it does not know fails the test, so a new kind of field
// is noticed here rather than skipped.
func fillValue(t *testing.T, v reflect.Value, seed int) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 12, 6, 17, 0, seed, 123456789, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(strings.Repeat("s", 20+seed))
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(300 + seed))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(bytes.Repeat([]byte{byte(seed)}, 40+seed))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillValue(t, s.Index(0), seed)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillValue(t, k, seed)
		fillValue(t, e, seed+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(t, p.Elem(), seed)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(t, v.Field(i), seed+i)
			}
		}
	default:
		t.Fatalf("fillValue: no value for a %s (%s): teach the test and appendRecord", v.Kind(), v.Type())
	}
}

func checkSameBytes(t *testing.T, what string, r *record) {
	t.Helper()
	want, err := recordEnc.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got := appendRecord(nil, r)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: appendRecord differs from the reflective encoder\n got %x\nwant %x", what, got, want)
	}
}

// appendRecord writes exactly the bytes the reflective encoder wrote (so
// every store's decoder reads them identically), field by field: a field
// added to Secret, record, Envelope or MaterialDigest but not to
// appendRecord fails here.
func TestRecordEncoderMatchesCBOR(t *testing.T) {
	st := reflect.TypeFor[Secret]()
	for i := range st.NumField() {
		r := &record{Secret: &Secret{}}
		fillValue(t, reflect.ValueOf(r.Secret).Elem().Field(i), i)
		checkSameBytes(t, "Secret."+st.Field(i).Name, r)
	}
	full := &record{Secret: &Secret{}}
	fillValue(t, reflect.ValueOf(full).Elem(), 1)
	checkSameBytes(t, "every field", full)
	checkSameBytes(t, "sample", sampleRecord())
	checkSameBytes(t, "kmip key", pairRecord())
	checkSameBytes(t, "empty", &record{Secret: &Secret{}})
	checkSameBytes(t, "no secret", &record{Sealed: &crypto.Envelope{Version: 1}})

	// Edges of the encoding: empty and nil containers, zero times, long
	// strings, negative and wide integers, one and two digest members.
	zero := time.Time{}
	edges := []func(*Secret, *record){
		func(s *Secret, _ *record) {
			s.Metadata, s.Attributes, s.Consumers = map[string]string{}, map[string]string{}, []Consumer{}
		},
		func(s *Secret, _ *record) { s.Expiration, s.ActivationDate = &zero, &zero },
		func(s *Secret, _ *record) { s.Name = strings.Repeat("n", 70000); s.BitLength = -7 },
		func(s *Secret, _ *record) { s.BitLength = 1 << 40 },
		func(s *Secret, _ *record) { s.BitLength = 65535 },
		func(s *Secret, _ *record) { s.Digest = &MaterialDigest{} },
		func(s *Secret, _ *record) { s.Digest = &MaterialDigest{SHA256: []byte{}, PEMType: "CERTIFICATE"} },
		func(_ *Secret, r *record) { r.Sealed = &crypto.Envelope{WrappedDEK: []byte{}, Version: -1} },
		func(s *Secret, _ *record) {
			s.ACL = &ACL{}
			s.Encryption = &DiskEncryption{}
			s.Revocation = &Revocation{}
		},
		func(s *Secret, _ *record) { s.UsageLimits = &UsageLimits{} },
		func(s *Secret, _ *record) {
			s.Consumers = append(s.Consumers, Consumer{Service: "glance"}, Consumer{})
			s.ACL.Users = append(s.ACL.Users, "u2", "")
			s.Revocation = &Revocation{Occurred: &zero}
			s.UsageLimits = &UsageLimits{Used: -3}
			s.Encryption = &DiskEncryption{KeySize: 512}
		},
		func(s *Secret, _ *record) { s.Created = time.Date(1, 1, 1, 0, 0, 0, 1, time.FixedZone("x", 3600)) },
	}
	for i, edit := range edges {
		r := &record{Secret: &Secret{}}
		fillValue(t, reflect.ValueOf(r).Elem(), 3)
		edit(r.Secret, r)
		checkSameBytes(t, "edge "+string(rune('a'+i)), r)
	}
}

// pairRecord is what a KMIP Create of an AES-256 key stores.
func pairRecord() *record {
	now := time.Date(2026, 12, 6, 11, 58, 49, 438030123, time.UTC)
	return &record{
		Secret: &Secret{ID: "01a24b38-965e-708f-a495-15f49fd5084c", Project: "p-0123456789abcdef0123456789abcdef",
			Creator: "kmip-client", CreatorSource: "kmip", Type: Symmetric, Algorithm: "aes", BitLength: 256,
			ContentType: "application/octet-stream", State: Active, Created: now, Updated: now, ActivationDate: &now,
			Attributes: map[string]string{"usage_mask": "12"}, HasPayload: true,
			Digest: &MaterialDigest{SHA256: make([]byte, 32)}, Generated: true, AlwaysSensitive: true, Fresh: true},
		Sealed: &crypto.Envelope{Version: 1, WrappedDEK: make([]byte, 60), Ciphertext: make([]byte, 60)},
	}
}

func BenchmarkRecordEncode(b *testing.B) {
	for _, c := range []struct {
		name string
		r    *record
	}{{"kmip-key", pairRecord()}, {"sample", sampleRecord()}} {
		b.Run(c.name+"/hand", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				buf = appendRecord(buf[:0], c.r)
			}
		})
		b.Run(c.name+"/reflect", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				recordEnc.Marshal(c.r)
			}
		})
	}
}

// Maps of several members come out in map order, as before: decoded, they
// are the same record.
func TestRecordEncoderMaps(t *testing.T) {
	r := sampleRecord()
	for i := range 30 {
		k := strings.Repeat("k", i+1)
		r.Metadata[k], r.Attributes["x-"+k] = k, k
	}
	got := appendRecord(nil, r)
	want, _ := recordEnc.Marshal(r)
	a, err := decodeRecord(got)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := decodeRecord(want)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("appendRecord's maps decode differently")
	}
}
