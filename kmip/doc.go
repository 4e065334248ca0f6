// Package kmip is Keywarden's KMIP endpoint: a TLS listener with client
// certificates, TTLV framing and the operations of the Baseline Server and
// Symmetric Key Lifecycle Server profiles (plus Register of Secret Data for
// passphrases), for KMIP 1.0–1.4, 2.0 and 2.1, all on kms.Service.
//
// The adapter holds no rules: every read, change and refusal is the
// service's, so an object is the same through KMIP and the Barbican REST API
// (a passphrase is Secret Data of type Password, a symmetric secret a
// Symmetric Key, and so on — see attr_table.go and objects.go).
//
// Files:
//
//	server.go         listener, accept loop, caps, shutdown
//	admission.go      shedding and refusing connections, failure reasons, rate-limited logs
//	conn.go           one connection: TLS handshake, read/write loops, framing limits
//	identity.go       client certificate → kms.Identity (own CA's subject, or configured mappings)
//	ttlv.go           the hand-written TTLV reader and writer of the hot path
//	message.go        request header and batch items, response header and items, versions
//	dispatch.go       the operation table, batches, ID Placeholder, error continuation
//	errors.go         Result Reasons, kms error kinds → reasons, 2.x reasons for 1.x clients
//	attr_table.go     attribute names and tables (owned, stored, read-only, versions), type/state/algorithm maps
//	attr_codec.go     attribute values: stored form, reading from requests, writing to responses
//	attr_secret.go    kms.Secret → KMIP attributes (the one mapping)
//	objects.go        managed objects (key blocks, secret data, opaque, certificates) ↔ payloads
//	transparent.go    Transparent RSA / EC key material for Get
//	ops_discover.go   Discover Versions, Query
//	ops_lifecycle.go  Create, Register, Activate, Revoke, Destroy
//	ops_get.go        Get
//	ops_attributes.go Get Attributes, Get Attribute List, Add/Modify/Delete/Set Attribute
//	ops_locate.go     Locate, Check
//	ops_keypair.go    Create Key Pair
//	ops_crypto.go     Encrypt, Decrypt, Sign, Signature Verify, MAC, MAC Verify
//	ops_rng.go        Hash, RNG Retrieve, RNG Seed
//	ops_stream.go     streamed Sign, Verify, MAC, Hash (Correlation Value)
//
// Tags, types and enumerations come from gemalto/kmip-go's kmip14 and kmip20
// tables; its reflective codec is only used by the tests (as an independent
// encoder) and the benchmarks (as the "before").
package kmip
