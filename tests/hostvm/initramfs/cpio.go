// Package initramfs writes an uncompressed initramfs (a cpio archive in the
// kernel's "newc" format) from host files, dynamically linked binaries with
// the libraries they load, and generated files. Uncompressed, because under
// TCG the kernel would spend seconds decompressing it.
package initramfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Archive is an initramfs being written. Parent directories are created on
// demand; a path added twice is written once.
type Archive struct {
	w    *bufio.Writer
	f    *os.File
	ino  uint32
	seen map[string]bool
	err  error
}

// Create starts an archive at file.
func Create(file string) (*Archive, error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	return &Archive{f: f, w: bufio.NewWriterSize(f, 1<<20), seen: map[string]bool{"": true, "/": true}}, nil
}

// Dir adds a directory (and its parents).
func (a *Archive) Dir(name string) { a.entry(name, 0o040755, "", nil) }

// Symlink adds name → target.
func (a *Archive) Symlink(name, target string) { a.entry(name, 0o120777, target, nil) }

// Bytes adds a regular file with the given permission bits.
func (a *Archive) Bytes(name string, perm os.FileMode, data []byte) {
	a.entry(name, 0o100000|uint32(perm.Perm()), "", data)
}

// File copies a host file (following symlinks) to name.
func (a *Archive) File(name, hostPath string) {
	if a.err != nil {
		return
	}
	st, err := os.Stat(hostPath)
	if err != nil {
		a.err = err
		return
	}
	data, err := os.ReadFile(hostPath)
	if err != nil {
		a.err = err
		return
	}
	a.Bytes(name, st.Mode(), data)
}

// Close writes the trailer; the first error of any call is returned here.
func (a *Archive) Close() error {
	a.header("TRAILER!!!", 0, 0, 0)
	if a.err == nil {
		a.err = a.w.Flush()
	}
	if err := a.f.Close(); a.err == nil {
		a.err = err
	}
	return a.err
}

func (a *Archive) entry(name string, mode uint32, link string, data []byte) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if a.err != nil || a.seen[name] {
		return
	}
	if dir := path.Dir(name); dir != "." {
		a.Dir(dir)
	}
	a.seen[name] = true
	body := data
	if link != "" {
		body = []byte(link)
	}
	a.header(name, mode, uint32(len(body)), a.nextIno())
	a.write(body)
	a.pad(len(body))
}

func (a *Archive) nextIno() uint32 { a.ino++; return a.ino }

// header writes one newc header and the name, padded to 4 bytes.
func (a *Archive) header(name string, mode, size, ino uint32) {
	nlink := uint32(1)
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	fmt.Fprintf(a.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	a.write([]byte(name + "\x00"))
	a.pad(110 + len(name) + 1)
}

func (a *Archive) write(b []byte) {
	if a.err == nil {
		_, a.err = a.w.Write(b)
	}
}

func (a *Archive) pad(n int) {
	if r := n % 4; r != 0 {
		a.write(make([]byte, 4-r))
	}
}

var _ io.Closer = (*Archive)(nil)
