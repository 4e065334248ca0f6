package hosttest

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
)

// Scanner watches every process's command line while a test runs
// cryptsetup or qemu-img, to prove a secret never shows up in argv (which
// any local user can read from /proc/<pid>/cmdline). It polls until Stop.
type Scanner struct {
	needles [][]byte
	watch   []string
	stop    chan struct{}
	wg      sync.WaitGroup

	mu    sync.Mutex
	seen  map[string]int // watched binary → command lines observed
	leaks []string
	scans int
}

// StartScan scans for any of needles; watch names the binaries (argv[0] base
// names) whose sightings are counted, so a test can assert it really looked
// while they ran.
func StartScan(needles [][]byte, watch ...string) *Scanner {
	s := &Scanner{needles: needles, watch: watch, stop: make(chan struct{}), seen: map[string]int{}}
	s.wg.Go(s.loop)
	return s
}

// ScanReport is what a scan found.
type ScanReport struct {
	Seen  map[string]int
	Leaks []string // command lines holding a needle (the needle masked)
	Scans int
}

// Stop ends the scan and returns its findings.
func (s *Scanner) Stop() ScanReport {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return ScanReport{Seen: s.seen, Leaks: s.leaks, Scans: s.scans}
}

func (s *Scanner) loop() {
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		s.scanOnce()
	}
}

func (s *Scanner) scanOnce() {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		argv0, _, _ := bytes.Cut(b, []byte{0})
		name := filepath.Base(string(argv0))
		s.mu.Lock()
		for _, w := range s.watch {
			if name == w {
				s.seen[w]++
			}
		}
		for _, n := range s.needles {
			if len(n) > 0 && bytes.Contains(b, n) {
				masked := bytes.ReplaceAll(b, n, []byte("<SECRET>"))
				s.leaks = append(s.leaks, string(bytes.ReplaceAll(masked, []byte{0}, []byte{' '})))
			}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.scans++
	s.mu.Unlock()
}
