package loadgen

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync flushes f's data (not its metadata), as a write-ahead log does.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
