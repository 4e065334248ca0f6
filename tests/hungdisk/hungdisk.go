// Package hungdisk mounts a directory through FUSE so that a test can make
// the writes and fsyncs of files under it hang, as they do on a dead disk
// or an unreachable NFS server, and then answer again. The hang is real:
// write(2) and fsync(2) block in the kernel until this package's FUSE
// server replies. It stands in for a stuck device because these machines
// have no device-mapper (dm-delay, dm-flakey).
package hungdisk

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Disk is a mounted directory whose writes can be made to hang.
type Disk struct {
	Dir string // the mount point: use paths under it

	mu      sync.Mutex
	gate    chan struct{} // non-nil while hung; closed by Answer
	blocked atomic.Int64
	fsyncs  atomic.Int64
}

// Mount mounts a loopback of a new empty directory at a new mount point
// and unmounts it when the test ends (answering whatever still hangs
// first). It needs root and /dev/fuse; without them the test fails.
func Mount(t testing.TB) *Disk {
	t.Helper()
	backing, mnt := t.TempDir(), t.TempDir()
	d := &Disk{Dir: mnt}
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		t.Fatal(err)
	}
	gated := &node{LoopbackNode: root.(*fs.LoopbackNode), d: d}
	gated.RootData.RootNode = gated
	srv, err := fs.Mount(mnt, gated, &fs.Options{MountOptions: fuse.MountOptions{
		DirectMountStrict: true, FsName: "hungdisk", Name: "hungdisk",
	}})
	if err != nil {
		t.Fatalf("mounting a FUSE file system at %s (needs root and /dev/fuse): %v", mnt, err)
	}
	t.Cleanup(func() {
		d.Answer()
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmounting %s: %v", mnt, err)
		}
	})
	return d
}

// Hang makes every write and fsync under Dir block from now on.
func (d *Disk) Hang() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gate == nil {
		d.gate = make(chan struct{})
	}
}

// Answer lets the blocked operations and later ones through.
func (d *Disk) Answer() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gate != nil {
		close(d.gate)
		d.gate = nil
	}
}

// Fsyncs is how many fsyncs (and fdatasyncs) reached the disk so far.
func (d *Disk) Fsyncs() int { return int(d.fsyncs.Load()) }

// Blocked is how many writes and fsyncs are hanging now.
func (d *Disk) Blocked() int { return int(d.blocked.Load()) }

// wait blocks while the disk hangs. A signal to the caller does not end
// it (a hung disk ignores them too); only Answer does.
func (d *Disk) wait() {
	d.mu.Lock()
	gate := d.gate
	d.mu.Unlock()
	if gate == nil {
		return
	}
	d.blocked.Add(1)
	<-gate
	d.blocked.Add(-1)
}

// node is a loopback node whose files are gated.
type node struct {
	*fs.LoopbackNode
	d *Disk
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
)

func (n *node) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), d: n.d}
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return n.gated(fh), fuseFlags, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	in, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, n.gated(fh), fuseFlags, 0
}

func (n *node) gated(fh fs.FileHandle) fs.FileHandle {
	return &file{LoopbackFile: fh.(*fs.LoopbackFile), d: n.d}
}

// file is a loopback file whose writes and fsyncs wait for the gate.
type file struct {
	*fs.LoopbackFile
	d *Disk
}

// PassthroughFd refuses the kernel's FUSE passthrough (Linux 6.9+), which
// would send reads and writes straight to the backing file, past the gate.
func (f *file) PassthroughFd() (int, bool) { return 0, false }

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	f.d.wait()
	return f.LoopbackFile.Write(ctx, data, off)
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	f.d.fsyncs.Add(1)
	f.d.wait()
	return f.LoopbackFile.Fsync(ctx, flags)
}
