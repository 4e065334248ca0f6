// Package kernel unpacks Debian's linux-image-amd64 into a cache directory
// (apt-get download + dpkg-deb -x + depmod, seconds instead of the minutes a
// real install with its initramfs hooks takes) and resolves the modules a
// test VM must load, in load order.
package kernel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Meta is Debian's metapackage that always depends on the current kernel.
const Meta = "linux-image-amd64"

// Kernel is an unpacked kernel package.
type Kernel struct {
	Version string // e.g. 6.1.0-57-amd64
	Root    string // holds boot/vmlinuz-VERSION and lib/modules/VERSION
}

// VMLinuz is the kernel image path.
func (k Kernel) VMLinuz() string { return filepath.Join(k.Root, "boot", "vmlinuz-"+k.Version) }

// ModDir is lib/modules/VERSION under Root.
func (k Kernel) ModDir() string { return filepath.Join(k.Root, "lib", "modules", k.Version) }

// Resolve names the kernel package linux-image-amd64 depends on today.
func Resolve() (pkg string, err error) {
	out, err := exec.Command("apt-cache", "depends", Meta).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w", Meta, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image package", Meta)
}

// Fetch returns the unpacked kernel package pkg under cache, downloading
// and unpacking it the first time. Unpacking goes to a scratch directory
// renamed into place, so an interrupted run never leaves half a kernel and
// two runs at once both end with a whole one.
func Fetch(cache, pkg string) (Kernel, error) {
	version := strings.TrimPrefix(pkg, "linux-image-")
	k := Kernel{Version: version, Root: filepath.Join(cache, pkg)}
	if _, err := os.Stat(filepath.Join(k.ModDir(), "modules.dep")); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return k, err
	}
	tmp, err := os.MkdirTemp(cache, pkg+".tmp-")
	if err != nil {
		return k, err
	}
	defer os.RemoveAll(tmp)
	if err := run(tmp, "apt-get", "download", "-q", pkg); err != nil {
		return k, err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return k, fmt.Errorf("apt-get download %s left %d .deb files", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if err := run(tmp, "dpkg-deb", "-x", debs[0], root); err != nil {
		return k, err
	}
	if err := run(tmp, "depmod", "-b", root, version); err != nil {
		return k, err
	}
	if err := os.Rename(root, k.Root); err != nil {
		// Another run may have put the same kernel there first.
		if _, serr := os.Stat(filepath.Join(k.ModDir(), "modules.dep")); serr == nil {
			return k, nil
		}
		return k, err
	}
	return k, nil
}

// Modules lists the .ko files to insmod, dependencies first and each once,
// so that names (e.g. "virtio_blk", "dm_crypt") load. Built-in modules need
// nothing and are left out.
func (k Kernel) Modules(names ...string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	for _, n := range names {
		out, err := exec.Command("modprobe", "-d", k.Root, "-S", k.Version, "--show-depends", n).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("modprobe --show-depends %s: %v: %s", n, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "insmod" || seen[f[1]] {
				continue
			}
			seen[f[1]] = true
			order = append(order, f[1])
		}
	}
	if len(order) == 0 {
		return nil, errors.New("no module to load: is the kernel unpacked?")
	}
	return order, nil
}

func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
