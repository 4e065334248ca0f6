package secretexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Mode selects how extra secrets reach the child.
type Mode int

const (
	// Pipe passes each secret through an anonymous pipe (default).
	Pipe Mode = iota
	// Memfd passes each secret as an anonymous, sealed in-memory file.
	Memfd
)

// FirstFD is the descriptor number of the first entry of Cmd.Files in the
// child (0-2 are stdio).
const FirstFD = 3

// FDPath is the path a child opens to read Cmd.Files[i].
func FDPath(i int) string { return fmt.Sprintf("/dev/fd/%d", FirstFD+i) }

// Cmd is one run of a helper binary.
type Cmd struct {
	Path   string
	Args   []string
	Stdin  []byte   // secret written to the child's stdin; nil: empty stdin
	Files  [][]byte // secrets readable at FDPath(i)
	Mode   Mode
	Stdout io.Writer // optional: streamed stdout (also kept in Result)
	Env    []string  // extra environment entries
}

// Result is what a finished child left behind. A non-zero exit is a Result,
// not an error: callers map exit codes to their own typed errors.
type Result struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	Elapsed  time.Duration
}

// maxOutput caps what is kept of a child's stdout and stderr.
const maxOutput = 1 << 20

// Run starts the child, feeds the secrets and waits. The error is non-nil
// only when the child could not run or ctx ended it.
func Run(ctx context.Context, c Cmd) (Result, error) {
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	// A fixed locale keeps the messages we map to typed errors stable.
	cmd.Env = append(append(os.Environ(), "LC_ALL=C", "LANG=C"), c.Env...)
	cmd.WaitDelay = 5 * time.Second

	var closers []io.Closer
	var feeds []feed
	started := false
	defer func() {
		for _, f := range closers {
			f.Close()
		}
		if !started { // no writer goroutine owns the write ends yet
			for _, fd := range feeds {
				fd.w.Close()
			}
		}
	}()
	stdin, err := newPipe(c.Stdin, &feeds, &closers)
	if err != nil {
		return Result{}, err
	}
	cmd.Stdin = stdin
	for _, s := range c.Files {
		var f *os.File
		if c.Mode == Memfd {
			f, err = newMemfd(s)
			if f != nil {
				closers = append(closers, f)
			}
		} else {
			f, err = newPipe(s, &feeds, &closers)
		}
		if err != nil {
			return Result{}, err
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}

	var stdout, stderr capBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.Stdout != nil {
		cmd.Stdout = io.MultiWriter(&stdout, c.Stdout)
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	started = true
	// The child holds its own copies of the read ends now; dropping ours
	// means a child that exits early makes our writes fail instead of block.
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	stdin.Close()
	var wg sync.WaitGroup
	for _, fd := range feeds {
		wg.Go(fd.write)
	}
	err = cmd.Wait()
	// Once the child is gone a blocked write fails with EPIPE; waiting here
	// means no goroutine still reads the caller's buffer when it zeroes it.
	wg.Wait()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Elapsed: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s: %w", c.Path, ctx.Err())
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
		return res, nil
	case err != nil:
		return res, err
	}
	return res, nil
}

// feed writes one secret into the write end of a pipe, then closes it so
// the child sees EOF right after the secret: no trailing newline, no more.
type feed struct {
	w      *os.File
	secret []byte
}

func (f feed) write() {
	defer f.w.Close()
	f.w.Write(f.secret)
}

func newPipe(secret []byte, feeds *[]feed, closers *[]io.Closer) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	*closers = append(*closers, r)
	if len(secret) == 0 {
		w.Close()
		return r, nil
	}
	*feeds = append(*feeds, feed{w: w, secret: secret})
	return r, nil
}

// newMemfd returns an anonymous memory file holding secret, sealed against
// further writes so the child reads exactly what we wrote.
func newMemfd(secret []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("keywarden-secret", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:keywarden-secret")
	if _, err := f.Write(secret); err != nil {
		return f, err
	}
	seals := unix.F_SEAL_WRITE | unix.F_SEAL_GROW | unix.F_SEAL_SHRINK | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return f, fmt.Errorf("memfd seal: %w", err)
	}
	_, err = f.Seek(0, io.SeekStart)
	return f, err
}

// capBuffer keeps at most maxOutput bytes (the tail, where errors are).
type capBuffer struct{ bytes.Buffer }

func (b *capBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.Buffer.Write(p)
	if over := b.Len() - maxOutput; over > 0 {
		b.Next(over)
	}
	return n, nil
}
