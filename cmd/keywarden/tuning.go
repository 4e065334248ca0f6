package main

import (
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"strconv"
)

// Runtime tuning for the server. The request path allocates a few KB per
// request that die at once, while the live heap (record and token caches)
// stays small, so with the default GOGC=100 the collector runs very often
// for little gain: on the REST benchmark GC took 8% (payload get) to 15%
// (create) of the server's CPU; with GOGC=400, 4-5%.
// A higher GOGC trades memory for that CPU; a soft memory limit keeps the
// trade bounded, so a large live heap makes the collector work harder
// instead of growing the process towards OOM.
//
// The limit is capped (maxMemoryLimit): a share of a large host let a
// one-off scan of a big project leave the heap at five times its live
// size for as long as GOGC allowed (issue 14: 2–5 GB RSS). The live heap
// is bounded (record cache, KEKs, tokens: 76 MiB with the caches full at a
// million secrets) and lists stream, so the cap costs collections only
// when the live heap passes a fifth of it. With the bolt store's map
// budget (192 MiB of file pages, plus what readers map while a trim
// waits) RSS stays under 512 MiB; at 384 MiB the heap alone took 365 MiB.
//
// Both apply only when the operator has not chosen: GOGC and GOMEMLIMIT in
// the environment always win.

const (
	// tunedGCPercent is the GOGC used when GOGC is unset.
	tunedGCPercent = 400
	// The soft memory limit, when GOMEMLIMIT is unset, is this share of the
	// memory available to the process (cgroup limit or physical memory),
	// never less than minMemoryLimit nor more than maxMemoryLimit.
	memoryLimitShare = 0.5
	minMemoryLimit   = 128 << 20
	maxMemoryLimit   = 192 << 20
)

// tuneRuntime sets GOGC and the soft memory limit unless the environment
// sets them. It returns what it did, for the start-up log (empty when it
// left both alone).
func tuneRuntime() string {
	var did []byte
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(tunedGCPercent)
		did = append(did, "GOGC="+strconv.Itoa(tunedGCPercent)...)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if avail := availableMemory(); avail > 0 {
			limit := min(max(int64(float64(avail)*memoryLimitShare), minMemoryLimit), maxMemoryLimit)
			debug.SetMemoryLimit(limit)
			if len(did) > 0 {
				did = append(did, ' ')
			}
			did = append(did, "GOMEMLIMIT="+strconv.FormatInt(limit>>20, 10)+"MiB"...)
		}
	}
	return string(did)
}

// availableMemory is the memory this process may use: the smaller of the
// cgroup (v2 or v1) limit and physical memory (Linux); 0 when unknown.
func availableMemory() int64 {
	var avail int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range bytes.Lines(b) {
			// "MemTotal:       24684132 kB"
			if rest, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
				if f := bytes.Fields(rest); len(f) == 2 && string(f[1]) == "kB" {
					if n, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil && n > 0 {
						avail = n << 10
					}
				}
				break
			}
		}
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
		if err != nil || n <= 0 || n >= math.MaxInt64/2 { // "max", or v1's "no limit" value
			continue
		}
		if avail == 0 || n < avail {
			avail = n
		}
	}
	return avail
}
