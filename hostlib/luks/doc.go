// Package luks reads LUKS1 and LUKS2 headers and checks a passphrase against
// their keyslots in pure Go, so a host (or CI) can verify a disk's secret
// without device-mapper, root or cryptsetup.
//
// It follows the on-disk format specifications (LUKS1 1.2.3, LUKS2 1.1):
// derive the keyslot key with the slot's KDF (PBKDF2, Argon2i, Argon2id),
// decrypt the slot's key material in 512-byte sectors with IVs starting at
// zero, merge the anti-forensic stripes with the AF hash, and compare the
// PBKDF2 digest of the result with the header's volume key digest.
//
// Only checking is implemented: nothing here writes a header. The header may
// sit at the start of a file or block device (raw LUKS) or inside a qcow2
// image (QEMU's qcow2+LUKS), located through the qcow2 header extension.
package luks
