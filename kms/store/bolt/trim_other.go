//go:build !linux

package bolt

import "errors"

// Elsewhere the trimmer is off: no statm to sample.
type statmReader struct{}

func (*statmReader) open() bool       { return false }
func (*statmReader) close()           {}
func (*statmReader) fileRSS() int64   { return 0 }
func dropMapped(uintptr, int64) error { return errors.New("bolt: map trimming is Linux only") }
