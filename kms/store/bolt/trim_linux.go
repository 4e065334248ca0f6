package bolt

import (
	"os"

	"golang.org/x/sys/unix"
)

// statmReader reads the file-backed RSS from an open /proc/self/statm: one
// pread, no allocation.
type statmReader struct {
	f   *os.File
	buf [128]byte
}

func (r *statmReader) open() bool {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return false
	}
	r.f = f
	return r.fileRSS() > 0
}

func (r *statmReader) close() {
	if r.f != nil {
		r.f.Close()
	}
}

// fileRSS is statm's third field, "shared": resident file-backed (and
// shmem) pages, in bytes; 0 when unreadable.
func (r *statmReader) fileRSS() int64 {
	if r.f == nil {
		return 0
	}
	n, err := r.f.ReadAt(r.buf[:], 0)
	if n == 0 && err != nil {
		return 0
	}
	field, v, digits := 0, int64(0), false
	for _, c := range r.buf[:n] {
		switch {
		case c >= '0' && c <= '9':
			if field == 2 {
				v, digits = v*10+int64(c-'0'), true
			}
		case c == ' ':
			if field == 2 {
				return v * int64(os.Getpagesize())
			}
			field++
		}
	}
	if !digits {
		return 0
	}
	return v * int64(os.Getpagesize())
}

// dropMapped drops [base, base+size) of a shared file mapping from RSS.
// The address comes from bbolt as a uintptr: the raw syscall takes it as
// is (no unsafe.Pointer round trip).
func dropMapped(base uintptr, size int64) error {
	if size <= 0 {
		return nil
	}
	_, _, e := unix.Syscall(unix.SYS_MADVISE, base, uintptr(size), unix.MADV_DONTNEED)
	if e != 0 {
		return e
	}
	return nil
}
