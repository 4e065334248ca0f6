//go:build unix

package kms

import "syscall"

// mapMemory maps n bytes (rounded up to pages) of zeroed anonymous
// memory; nil when it cannot.
func mapMemory(n int) []byte {
	if n <= 0 {
		return nil
	}
	page := syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, (n+page-1)/page*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return mem
}

func unmapMemory(mem []byte) { _ = syscall.Munmap(mem) }
