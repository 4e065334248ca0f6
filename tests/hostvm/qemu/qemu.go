// Package qemu boots a kernel and initramfs under qemu-system-x86_64 with
// no network, file-backed virtio disks, the serial console on a pipe (read
// line by line) and a QMP socket for live changes such as growing a disk.
package qemu

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Disk is a raw image attached as a virtio drive; ID names it in QMP.
type Disk struct {
	ID, Path string
}

// Config describes one VM.
type Config struct {
	Binary  string // default qemu-system-x86_64
	Kernel  string
	Initrd  string
	Append  string // kernel command line
	MemMiB  int    // default 1024
	CPUs    int    // default 2
	Disks   []Disk
	WorkDir string // holds the QMP socket
}

// VM is a running machine.
type VM struct {
	cmd   *exec.Cmd
	lines chan string
	qmp   string
	done  chan struct{}
	err   error

	mu  sync.Mutex
	log strings.Builder
}

// Args is the qemu command line for c: TCG (no KVM on these hosts), no
// NIC, the serial console on stdio and the VM powering off instead of
// rebooting, so a kernel panic ends the process.
func (c Config) Args() []string {
	mem, cpus := c.MemMiB, c.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 2
	}
	a := []string{"-M", "q35", "-accel", "tcg", "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-display", "none", "-vga", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.Append,
		"-qmp", "unix:" + filepath.Join(c.WorkDir, "qmp.sock") + ",server=on,wait=off"}
	for _, d := range c.Disks {
		a = append(a, "-drive", "file="+strings.ReplaceAll(d.Path, ",", ",,")+",format=raw,if=virtio,id="+d.ID)
	}
	return a
}

// Start boots c. The VM is killed when ctx ends.
func Start(ctx context.Context, c Config) (*VM, error) {
	bin := c.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	cmd := exec.CommandContext(ctx, bin, c.Args()...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	vm := &VM{cmd: cmd, lines: make(chan string, 4096), qmp: filepath.Join(c.WorkDir, "qmp.sock"), done: make(chan struct{})}
	go vm.read(out)
	return vm, nil
}

// read splits the console into lines. SeaBIOS and the kernel write escape
// sequences and carriage returns, which are dropped.
func (vm *VM) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			line = strings.ReplaceAll(line, "\r", "")
			vm.mu.Lock()
			vm.log.WriteString(line + "\n")
			vm.mu.Unlock()
			vm.lines <- line
		}
		if err != nil {
			break
		}
	}
	vm.err = vm.cmd.Wait()
	close(vm.lines)
	close(vm.done)
}

// Lines delivers the serial console line by line; it closes when qemu exits.
func (vm *VM) Lines() <-chan string { return vm.lines }

// Wait returns qemu's exit error once it is gone.
func (vm *VM) Wait() error {
	<-vm.done
	return vm.err
}

// Kill stops qemu at once.
func (vm *VM) Kill() {
	if vm.cmd.Process != nil {
		vm.cmd.Process.Kill()
	}
}

// Console is everything the serial console printed so far.
func (vm *VM) Console() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.log.String()
}

// Pid identifies the qemu process.
func (vm *VM) Pid() int { return vm.cmd.Process.Pid }
