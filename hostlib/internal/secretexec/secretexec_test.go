package secretexec

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestStdinAndFilesAreExact(t *testing.T) {
	secret := []byte("pa\x00ss\nword") // NUL and newline must survive as-is
	other := []byte("second")
	for _, mode := range []Mode{Pipe, Memfd} {
		res, err := Run(context.Background(), Cmd{
			Path:  "/bin/sh",
			Args:  []string{"-c", `cat; printf '|'; cat ` + FDPath(0) + `; printf '|'; cat ` + FDPath(1)},
			Stdin: secret,
			Files: [][]byte{other, secret},
			Mode:  mode,
		})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("mode %d: %v %d %s", mode, err, res.ExitCode, res.Stderr)
		}
		want := string(secret) + "|" + string(other) + "|" + string(secret)
		if string(res.Stdout) != want {
			t.Fatalf("mode %d: child read %q, want %q", mode, res.Stdout, want)
		}
	}
}

func TestMemfdIsRereadablePipeIsNot(t *testing.T) {
	script := `cat ` + FDPath(0) + `; cat ` + FDPath(0)
	for mode, want := range map[Mode]string{Memfd: "abab", Pipe: "ab"} {
		res, err := Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", script}, Files: [][]byte{[]byte("ab")}, Mode: mode})
		if err != nil || string(res.Stdout) != want {
			t.Fatalf("mode %d: %q %v, want %q", mode, res.Stdout, err, want)
		}
	}
}

func TestMemfdIsSealed(t *testing.T) {
	res, _ := Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", "echo x >> " + FDPath(0)}, Files: [][]byte{[]byte("ab")}, Mode: Memfd})
	if res.ExitCode == 0 {
		t.Fatal("child could append to the sealed secret file")
	}
}

func TestExitCodeAndStderr(t *testing.T) {
	res, err := Run(context.Background(), Cmd{Path: "/bin/sh", Args: []string{"-c", "echo boom >&2; exit 5"}})
	if err != nil || res.ExitCode != 5 || !bytes.Contains(res.Stderr, []byte("boom")) {
		t.Fatalf("res=%+v err=%v", res, err)
	}
}

func TestChildIgnoringLargeSecretDoesNotHang(t *testing.T) {
	big := make([]byte, 4<<20) // far beyond a pipe's buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Run(ctx, Cmd{Path: "/bin/true", Stdin: big, Files: [][]byte{big}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("res=%+v err=%v", res, err)
	}
}

func TestContextEndsChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, Cmd{Path: "/bin/sleep", Args: []string{"30"}})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err=%v after %v", err, time.Since(start))
	}
}

func TestMissingBinary(t *testing.T) {
	if _, err := Run(context.Background(), Cmd{Path: "/nonexistent/bin", Stdin: []byte("s"), Files: [][]byte{[]byte("s")}}); err == nil {
		t.Fatal("expected an error for a missing binary")
	}
}
