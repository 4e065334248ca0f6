package kms

import "unsafe"

// A column's arrays live outside the Go heap (mapped anonymous memory
// where the system has it: listcolumn_mmap.go). Held on the heap, a
// million entries' 50 MiB of live data would raise the collector's
// target by GOGC (400 in the server) times as much; mapped, a column
// costs the resident memory it uses and nothing more. The arrays hold
// no pointers, and no slice of them outlives the column's lock: they
// are copied out (suffixAt) or used while it is held.

// grow returns s with room for extra more elements, moved to a larger
// mapping of c's when full.
func grow[T any](c *nameColumn, s []T, extra int) []T {
	if len(s)+extra <= cap(s) {
		return s
	}
	ns := alloc[T](c, max(len(s)+extra, cap(s)+cap(s)/4+64))[:len(s)]
	copy(ns, s)
	c.free(unsafe.Pointer(unsafe.SliceData(s)))
	return ns
}

// alloc returns an empty slice with room for n elements, mapped when it
// can be.
func alloc[T any](c *nameColumn, n int) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	mem := mapMemory(n * size)
	if mem == nil {
		return make([]T, 0, n)
	}
	if c.maps == nil {
		c.maps = map[unsafe.Pointer][]byte{}
	}
	p := unsafe.Pointer(unsafe.SliceData(mem))
	c.maps[p] = mem
	return unsafe.Slice((*T)(p), len(mem)/size)[:0]
}

// free unmaps the mapping that starts at p, if it is one of c's.
func (c *nameColumn) free(p unsafe.Pointer) {
	if mem, ok := c.maps[p]; ok {
		delete(c.maps, p)
		unmapMemory(mem)
	}
}

// freeAll unmaps every mapping of c; its slices must be dropped first.
func (c *nameColumn) freeAll() {
	for p, mem := range c.maps {
		delete(c.maps, p)
		unmapMemory(mem)
	}
}
