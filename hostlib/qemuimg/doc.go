// Package qemuimg drives qemu-img for QEMU-native LUKS: create qcow2+LUKS
// and raw LUKS images, convert between them under the same or a different
// secret (an encrypted image becoming an encrypted volume, never decrypted
// to disk), read the decrypted size (os_decrypt_size) and report progress.
//
// Secrets are --object secret,id=...,file=/dev/fd/N where N is an
// inherited anonymous pipe (default) or a sealed memfd; QEMU reads the file
// byte-exact, so no newline is ever added and nothing names the secret on a
// filesystem or in argv.
package qemuimg
