// Package crypto is Keywarden's envelope encryption: nothing is stored in the
// clear, and the hot path is local AES-256-GCM only.
//
// # Key hierarchy
//
//	master key (MasterKey: RootKey file today, Vault Transit later)
//	  └─ wraps one KEK per project          (AAD: "keywarden/v1/kek-wrap", project)
//	       └─ wraps one fresh DEK per Seal  (AAD: "keywarden/v1/dek-wrap", secret id, project, type)
//	            └─ seals the payload        (AAD: "keywarden/v1/payload",  secret id, project, type)
//
// The master key never leaves its provider and is used only when a project's
// KEK is created, first loaded into a process, or rewrapped during master-key
// rotation. A Keyring keeps each project's unwrapped KEK in memory as a ready
// AES-GCM object, so Seal and Open touch neither the store nor the master key
// once a project is warm.
//
// Every ciphertext is AES-256-GCM with a random 96-bit nonce prefixed
// (nonce || ciphertext || tag). Binding the secret's id, project and type into
// the AAD of both the wrapped DEK and the payload means a sealed envelope
// copied onto another record does not open. Additional data is encoded as a
// length-prefixed domain string followed by length-prefixed fields, so no two
// distinct bindings or layers can produce the same AAD.
//
// Master-key rotation (RewrapKEK) re-wraps the small per-project KEKs only;
// payload envelopes are untouched. The stored form of a wrapped KEK records the
// ID of the master key that wrapped it, so a keyring with the wrong master key
// fails with an error naming both IDs and a rotation can be resumed.
//
// # Limits
//
// With random nonces a key must not seal more than 2^32 messages; each Seal
// uses its DEK once and its project KEK once, so the bound is 2^32 Seals per
// project, far above one secret per disk.
//
// Plaintext and key buffers owned by this package are zeroed after use (Zero).
// Go offers no way to erase the AES key schedules held inside crypto/aes
// objects; those are dropped to the garbage collector.
package crypto
