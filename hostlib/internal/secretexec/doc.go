// Package secretexec runs the host's helper binaries (cryptsetup, qemu-img)
// with secrets handed over on stdin or on inherited file descriptors, so a
// secret never appears in argv (world-readable in /proc/*/cmdline) and never
// lands in a named file another user could open.
//
// Descriptors are anonymous pipes by default. Memfd mode instead passes an
// anonymous in-memory file (memfd_create): it has no name on any filesystem
// from the start — a private temporary file that is "removed at once" by
// construction — and, unlike a pipe, can be read more than once.
package secretexec
