// Package hostlib is what a hypervisor host imports to use Keywarden
// secrets for disk encryption: fetch a disk's secret (package fetch, REST or
// KMIP), turn it into the LUKS passphrase, and format, open, close, verify,
// create and convert disks and images with cryptsetup and qemu-img.
//
// # Passphrases
//
// A passphrase secret is used byte-exact; a symmetric or opaque key becomes
// the lowercase hex of its bytes (Nova, Cinder and os-brick agree on both).
// Volumes formatted by older os-brick used a mangled hex that drops each
// byte's leading zero; when cryptsetup refuses the correct form (exit 2) and
// the mangled form differs, it is tried, and on success the correct
// passphrase is added, proven and the legacy keyslot removed, so the next
// unlock is clean (Host.Open, Host.TestUnlock). The pure-Go Verify reports a
// legacy match without changing anything.
//
// # Fast unlock profile
//
// LUKS stretches passphrases (PBKDF2 or Argon2, benchmarked to ~2 s and up
// to 1 GiB of memory) because people choose guessable passphrases. A
// Keywarden symmetric key is 256 bits from a CSPRNG: an attacker holding
// the header must search 2^256 keys, and multiplying the cost of each guess
// by a million (PBKDF2 ~2^20) changes nothing that matters, while every
// format and every unlock pays seconds — on a host booting dozens of VMs,
// minutes. So FastProfile uses PBKDF2-SHA256 with 1000 iterations (the
// smallest cryptsetup accepts), making format+unlock well under 0.5 s.
//
// The fixed count is only ever combined with pbkdf2: for argon2 cryptsetup
// reads --pbkdf-force-iterations as the time cost, and a PBKDF2-sized count
// then runs for many minutes; cryptsetup.PBKDF refuses that combination.
//
// The auto profile (default) picks FastProfile only for symmetric and opaque
// secrets of at least 128 bits. Passphrase secrets may have been typed by a
// person, so they keep cryptsetup's and QEMU's benchmarked defaults
// (DefaultProfile) unless the operator asks for fast explicitly.
//
// # Secrets in memory and in flight
//
// A Secret's material is one buffer, locked in RAM when possible and zeroed
// by Close; derived passphrases are zeroed after use. Secrets reach
// cryptsetup on stdin or an inherited pipe and qemu-img through
// --object secret,file=/dev/fd/N: never argv (readable by every user in
// /proc/*/cmdline), never a file on disk.
package hostlib
