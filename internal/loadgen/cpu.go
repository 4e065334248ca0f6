package loadgen

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// processCPU is the user+system CPU time used so far by process pid (0:
// this process), from /proc; -1 when unknown.
func processCPU(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	// Fields after the command name (which may hold spaces), from field 3:
	// utime and stime are fields 14 and 15, in clock ticks.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	const clockTicks = 100 // USER_HZ, 100 on every Linux port Go supports
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// cpuSince is the CPU process pid (0: this one) used since it had used
// before; -1 when either is unknown.
func cpuSince(pid int, before time.Duration) time.Duration {
	total := processCPU(pid) - before
	if before < 0 || total < 0 {
		return -1
	}
	return total
}

// processCPUs is the CPU the processes used so far, -1 when one is unknown.
func processCPUs(pids []int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		c := processCPU(p)
		if c < 0 {
			return -1
		}
		sum += c
	}
	return sum
}

// cpusSince is cpuSince for a server of several processes (a peer's
// workers).
func cpusSince(pids []int, before time.Duration) time.Duration {
	total := processCPUs(pids) - before
	if before < 0 || total < 0 {
		return -1
	}
	return total
}
