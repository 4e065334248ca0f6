// Package hostvm runs the host tests that need device-mapper inside Debian's
// own kernel under qemu (TCG: no KVM here): an initramfs with busybox,
// cryptsetup, the dm/virtio/loop modules and static Go binaries boots, runs
// the plan below, and reports on the serial console. A VM that cannot boot
// fails the test; nothing here skips except under -short.
package hostvm

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/tests/hostvm/initramfs"
	"github.com/keywarden/keywarden/tests/hostvm/kernel"
	"github.com/keywarden/keywarden/tests/hostvm/qemu"
)

//go:embed init.sh
var initScript []byte

// budget for boot plus every run; qemu is killed at twice that, so a slow,
// shared machine reports "over budget" rather than a bare timeout.
const budget = 5 * time.Minute

// modules to load, by name; Kernel.Modules adds their dependencies.
var modules = []string{"virtio_pci", "virtio_blk", "loop", "dm_crypt", "xts", "ecb", "algif_skcipher", "algif_hash"}

// A run is one test binary inside the VM; every test in want must PASS
// (a SKIP is a failure: in the VM nothing may be missing).
type run struct {
	name, pkg string
	args      string
	want      []string
}

// disks are the guest package's scratch volumes, 64 MiB each.
var disks = []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6"}

var plan = []run{
	{name: "cryptsetup", pkg: "./hostlib/cryptsetup", args: "-test.run ^(TestOpenCloseResize|TestPlainOpenClose)$",
		want: []string{"TestOpenCloseResize/luks1", "TestOpenCloseResize/luks2", "TestPlainOpenClose"}},
	{name: "hostlib", pkg: "./hostlib", args: "-test.run ^TestOpenWithDeviceMapper$",
		want: []string{"TestOpenWithDeviceMapper"}},
	{name: "guest", pkg: "./tests/hostvm/guest",
		want: []string{"TestAttachTwoDisksFormatOnFirstUse", "TestAttachPlain", "TestExtend",
			"TestAttachLegacyVolume", "TestWrongKeyAndBusyDetach", "TestFlagOverrideWarns",
			"TestOldMappingNameFoundByLink"}},
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestHostVM(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: booting a kernel under TCG takes tens of seconds")
	}
	needTools(t)
	work := t.TempDir()
	start := time.Now()
	k := fetchKernel(t)
	t.Logf("kernel %s ready in %v", k.Version, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	bins := buildBinaries(t, work)
	t.Logf("static binaries built in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	initrd := filepath.Join(work, "initrd.cpio")
	buildInitramfs(t, k, bins, initrd)
	st, _ := os.Stat(initrd)
	t.Logf("initramfs %d MiB in %v", st.Size()>>20, time.Since(start).Round(time.Millisecond))

	var vdisks []qemu.Disk
	var guestDisks []string
	for i, id := range disks { // sparse: 64 MiB each, nothing written yet
		p := filepath.Join(work, id+".img")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 64<<20); err != nil {
			t.Fatal(err)
		}
		vdisks = append(vdisks, qemu.Disk{ID: id, Path: p})
		guestDisks = append(guestDisks, fmt.Sprintf("%s=/dev/vd%c", id, 'a'+i))
	}
	writePlan(t, initrd, guestDisks)

	vm, rep := boot(t, k, initrd, work, vdisks)
	if !rep.booted {
		t.Fatalf("the VM did not boot within %v:\n%s", 2*budget, tail(vm.Console(), 60))
	}
	t.Logf("VM booted: /init ran after %.1fs of qemu (guest uptime %.1fs)", rep.bootWall.Seconds(), rep.bootUptime)
	for _, r := range plan {
		res, ok := rep.runs[r.name]
		t.Run(r.name, func(t *testing.T) {
			if !ok {
				t.Fatalf("never ran (VM stopped early):\n%s", tail(vm.Console(), 60))
			}
			t.Logf("%s: %.1fs in the VM, exit %d", r.name, res.seconds, res.code)
			checkRun(t, r, res)
		})
	}
	if !rep.done {
		t.Fatalf("the VM did not finish the plan within %v:\n%s", 2*budget, tail(vm.Console(), 60))
	}
	if rep.total > budget {
		t.Errorf("boot + tests took %v, over the %v budget", rep.total, budget)
	}
	t.Logf("boot + tests: %v wall (budget %v); guest uptime at the end %.1fs", rep.total.Round(100*time.Millisecond), budget, rep.endUptime)
}

// A VM that cannot boot must be seen as such, not waited on until the
// deadline: an initramfs without /init panics the kernel, which (panic=-1,
// -no-reboot) ends qemu at once, and no KWVM-BOOTED line ever comes.
func TestHostVMReportsFailedBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: booting a kernel under TCG takes seconds")
	}
	needTools(t)
	work := t.TempDir()
	k := fetchKernel(t)
	initrd := filepath.Join(work, "broken.cpio")
	a, err := initramfs.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	a.Bytes("/not-init", 0o755, []byte("#!/bin/sh\n"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	vm, rep := boot(t, k, initrd, work, nil)
	if rep.booted || rep.done {
		t.Fatalf("a VM without /init reported booting:\n%s", tail(vm.Console(), 20))
	}
	if !strings.Contains(vm.Console(), "Kernel panic") {
		t.Fatalf("no kernel panic on the console:\n%s", tail(vm.Console(), 20))
	}
	t.Logf("failed boot seen in %v", time.Since(start).Round(100*time.Millisecond))
}

// boot runs the VM to its end (or 2×budget) and returns what the console
// told.
func boot(t *testing.T, k kernel.Kernel, initrd, work string, disks []qemu.Disk) (*qemu.VM, report) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*budget)
	defer cancel()
	vm, err := qemu.Start(ctx, qemu.Config{Kernel: k.VMLinuz(), Initrd: initrd, MemMiB: 1536, WorkDir: work,
		Append: "console=ttyS0 panic=-1 quiet", Disks: disks})
	if err != nil {
		t.Fatalf("qemu does not start: %v", err)
	}
	defer vm.Kill()
	rep := collect(t, vm)
	if err := vm.Wait(); err != nil && !rep.done {
		t.Logf("qemu: %v", err)
	}
	return vm, rep
}

func needTools(t *testing.T) {
	for _, bin := range []string{"qemu-system-x86_64", "busybox", "cryptsetup", "losetup", "modprobe", "depmod", "apt-get", "dpkg-deb", "ldd"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is missing: run tests/ensure-deps.sh (as root it installs qemu-system-x86, busybox-static, kmod, cryptsetup-bin)", bin)
		}
	}
	bb, _ := exec.LookPath("busybox")
	if out, _ := exec.Command("ldd", bb).CombinedOutput(); !strings.Contains(string(out), "not a dynamic executable") {
		t.Fatalf("%s is dynamically linked: install busybox-static", bb)
	}
}

// fetchKernel unpacks linux-image-amd64's kernel in a cache shared by runs
// ($KEYWARDEN_VM_CACHE, else the user cache directory).
func fetchKernel(t *testing.T) kernel.Kernel {
	cache := os.Getenv("KEYWARDEN_VM_CACHE")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(dir, "keywarden", "vm")
	}
	pkg, err := kernel.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernel.Fetch(cache, pkg)
	if err != nil {
		t.Fatalf("kernel %s: %v", pkg, err)
	}
	return k
}

// buildBinaries compiles the server, keywarden-host and each planned test
// package statically (CGO_ENABLED=0), so they run in an initramfs with no
// libc.
func buildBinaries(t *testing.T, dir string) map[string]string {
	bins := map[string]string{}
	cmds := [][]string{
		{"build", "-o", filepath.Join(dir, "keywarden"), "./cmd/keywarden"},
		{"build", "-o", filepath.Join(dir, "keywarden-host"), "./cmd/keywarden-host"},
	}
	bins["/bin/keywarden"], bins["/bin/keywarden-host"] = cmds[0][2], cmds[1][2]
	for _, r := range plan {
		out := filepath.Join(dir, r.name+".test")
		cmds = append(cmds, []string{"test", "-c", "-o", out, r.pkg})
		bins["/tests/"+r.name+".test"] = out
	}
	for _, c := range cmds {
		args := append([]string{c[0], "-ldflags=-s -w"}, c[1:]...)
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bins
}

func buildInitramfs(t *testing.T, k kernel.Kernel, bins map[string]string, file string) {
	mods, err := k.Modules(modules...)
	if err != nil {
		t.Fatal(err)
	}
	a, err := initramfs.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	a.Bytes("/init", 0o755, initScript)
	a.File("/bin/busybox", must(exec.LookPath("busybox")))
	a.Binary("cryptsetup")
	a.Binary("losetup")
	var list []string
	for _, m := range mods {
		a.File("/lib/modules/"+filepath.Base(m), m)
		list = append(list, filepath.Base(m))
	}
	a.Bytes("/modules.list", 0o644, []byte(strings.Join(list, "\n")+"\n"))
	for dst, src := range bins {
		a.File(dst, src)
	}
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/etc"} {
		a.Dir(d)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// writePlan appends /tests/plan: the kernel unpacks concatenated cpio
// archives in order, so the plan can come after the big one.
func writePlan(t *testing.T, initrd string, guestDisks []string) {
	var b strings.Builder
	for _, r := range plan {
		bin := "/tests/" + r.name + ".test"
		if r.name == "guest" {
			bin = "env KW_DISKS=" + strings.Join(guestDisks, ",") + " " + bin
		}
		fmt.Fprintf(&b, "%s %s -test.v -test.count=1 -test.timeout=200s %s\n", r.name, bin, r.args)
	}
	plan := initrd + ".plan"
	a, err := initramfs.Create(plan)
	if err != nil {
		t.Fatal(err)
	}
	a.Bytes("/tests/plan", 0o644, []byte(b.String()))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	p, _ := os.ReadFile(plan)
	f, err := os.OpenFile(initrd, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(p); err != nil {
		t.Fatal(err)
	}
}

type runResult struct {
	code    int
	seconds float64
	output  []string
}

type report struct {
	booted, done          bool
	bootWall, total       time.Duration
	bootUptime, endUptime float64
	runs                  map[string]runResult
}

var marker = regexp.MustCompile(`KWVM-(BOOTED|BEGIN|END|RESIZE|DONE|ERROR)\b ?(.*)$`)

// collect follows the console until the plan is done or qemu exits,
// answering the guest's KWVM-RESIZE requests over QMP.
func collect(t *testing.T, vm *qemu.VM) report {
	rep := report{runs: map[string]runResult{}}
	start := time.Now()
	var cur string
	var out []string
	for line := range vm.Lines() {
		m := marker.FindStringSubmatch(line)
		if m == nil {
			if cur != "" {
				out = append(out, line)
			}
			continue
		}
		f := strings.Fields(m[2])
		switch m[1] {
		case "BOOTED":
			rep.booted, rep.bootWall = true, time.Since(start)
			rep.bootUptime = atof(f, 0)
		case "BEGIN":
			cur, out = m[2], nil
		case "END":
			if len(f) >= 4 {
				code, _ := strconv.Atoi(f[1])
				rep.runs[f[0]] = runResult{code: code, seconds: atof(f, 3) - atof(f, 2), output: out}
			}
			cur = ""
		case "RESIZE":
			size, _ := strconv.ParseInt(f[1], 10, 64)
			if err := vm.BlockResize(f[0], size); err != nil {
				t.Errorf("QMP block_resize %s %d: %v", f[0], size, err)
			}
			out = append(out, line)
		case "ERROR":
			t.Errorf("VM: %s", line)
		case "DONE":
			rep.done, rep.total, rep.endUptime = true, time.Since(start), atof(f, 0)
		}
	}
	return rep
}

var resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)

func checkRun(t *testing.T, r run, res runResult) {
	status := map[string]string{}
	for _, l := range res.output {
		if m := resultLine.FindStringSubmatch(l); m != nil {
			status[m[2]] = m[1]
			if m[1] != "PASS" {
				t.Errorf("%s %s", m[2], m[1])
			}
		}
	}
	for _, w := range r.want {
		if status[w] != "PASS" {
			t.Errorf("%s: %q, want PASS", w, status[w])
		}
	}
	if res.code != 0 || t.Failed() {
		t.Errorf("exit %d; output:\n%s", res.code, strings.Join(res.output, "\n"))
		return
	}
	var lines []string
	for _, l := range res.output {
		if resultLine.MatchString(l) {
			lines = append(lines, l)
		}
	}
	t.Log("\n" + strings.Join(lines, "\n"))
}

func atof(f []string, i int) float64 {
	if i >= len(f) {
		return 0
	}
	v, _ := strconv.ParseFloat(f[i], 64)
	return v
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
