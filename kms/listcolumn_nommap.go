//go:build !unix

package kms

// mapMemory: no mapping here; the column's arrays are on the heap.
func mapMemory(int) []byte { return nil }

func unmapMemory([]byte) {}
