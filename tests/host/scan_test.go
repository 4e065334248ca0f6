package host

import "github.com/keywarden/keywarden/hostlib/hosttest"

func startScan(needles [][]byte) *hosttest.Scanner {
	return hosttest.StartScan(needles, "cryptsetup", "qemu-img", "keywarden-host")
}
