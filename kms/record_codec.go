package kms

import (
	"encoding/json"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/keywarden/keywarden/crypto"
)

// A secret record is stored as a CBOR map keyed by small integers (the
// `cbor` tags of Secret, record, crypto.Envelope and MaterialDigest)
// followed by its integrity tag: byte strings stay binary and no field
// name is repeated in every record, which takes a symmetric key's record
// from ~790 bytes of JSON to ~400. Times keep nanoseconds (RFC 3339 text),
// as the JSON did, so a record reads back equal to what was written.
//
// Records written before are JSON with the tag as their last member; they
// are read as they are and become CBOR on their next write. The first byte
// tells them apart: '{' for JSON, a CBOR map's major type (0xa0-0xbf)
// otherwise.

var (
	recordEnc = mustEncMode(cbor.EncOptions{Time: cbor.TimeRFC3339Nano})
	recordDec = mustDecMode(cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF, // a doubled field is a forged record, not a choice
		MaxMapPairs: 4096,
	})
)

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

func isJSONRecord(b []byte) bool { return len(b) > 0 && b[0] == '{' }

// marshalRecord is r's body, before its tag (record_enc.go writes it;
// recordEnc is the reflective form it must equal).
func marshalRecord(r *record) []byte { return appendRecord(nil, r) }

// decodeRecord decodes a verified body in either form.
func decodeRecord(b []byte) (*record, error) {
	r := &record{Secret: &Secret{}}
	var err error
	if isJSONRecord(b) {
		err = json.Unmarshal(b, r)
	} else {
		err = recordDec.Unmarshal(b, r)
	}
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return r, nil
}

// splitTagged cuts a CBOR record into its body and its tag.
func splitTagged(raw []byte) (body, tag []byte, ok bool) {
	if len(raw) <= crypto.TagSize {
		return nil, nil, false
	}
	n := len(raw) - crypto.TagSize
	return raw[:n:n], raw[n:], true
}

// recordConsumers counts a stored record's consumers without decoding the
// rest of it (the quota engine's recount reads every record of a project).
func recordConsumers(raw []byte) (int, error) {
	var c struct {
		Consumers []struct{} `json:"consumers" cbor:"22,keyasint"`
	}
	var err error
	if isJSONRecord(raw) {
		err = json.Unmarshal(raw, &c)
	} else {
		_, err = recordDec.UnmarshalFirst(raw, &c) // the tag follows
	}
	return len(c.Consumers), err
}
