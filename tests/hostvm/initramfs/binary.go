package initramfs

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binary copies the host binary found as name (on PATH or a path) to
// /bin/BASE together with every shared library ldd lists, each at the path
// the dynamic loader will look for it.
func (a *Archive) Binary(name string) {
	if a.err != nil {
		return
	}
	full, err := exec.LookPath(name)
	if err != nil {
		a.err = err
		return
	}
	libs, err := sharedLibs(full)
	if err != nil {
		a.err = err
		return
	}
	a.File("/bin/"+filepath.Base(full), full)
	for _, l := range libs {
		a.File(l, l)
	}
}

// sharedLibs parses ldd's output: "libx.so.1 => /path (0x…)" and the
// loader's own "/lib64/ld-linux-x86-64.so.2 (0x…)"; the vDSO has no file.
func sharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, out)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		case len(f) >= 3 && f[1] == "=>" && f[2] == "not":
			return nil, fmt.Errorf("ldd %s: %s not found", bin, f[0])
		}
	}
	return libs, nil
}
