package crypto

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Key files hold size raw random bytes, mode 0600: the root key, the audit
// key and the development token key all live in one.

// LoadOrCreateKeyFile loads the key file at path, or creates it when it does
// not exist (parent dir created 0700). Creation writes a temp file, fsyncs it
// and publishes it with a hard link: atomic like a rename, but never
// replacing an existing file, so two processes racing on first start end up
// with the same key. what names the key in errors ("root key").
func LoadOrCreateKeyFile(path, what string, size int) (key []byte, created bool, err error) {
	key, err = ReadKeyFile(path, what, size)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("%s directory: %w", what, err)
	}
	key = make([]byte, size)
	rand.Read(key)
	if err := createKeyFile(path, what, key); err != nil {
		Zero(key)
		if errors.Is(err, fs.ErrExist) { // another process won the race: use theirs
			key, err = ReadKeyFile(path, what, size)
			return key, false, err
		}
		return nil, false, err
	}
	return key, true, nil
}

// createKeyFile durably writes data to path, failing with fs.ErrExist if
// path exists. A reader never sees a partial file.
func createKeyFile(path, what string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".keyfile-*.tmp") // created 0600
	if err != nil {
		return fmt.Errorf("creating %s: %w", what, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("creating %s: %w", what, err)
	}
	os.Remove(tmp.Name()) // before the directory sync: a crash leaves one name
	// The entry must be durable before anything is sealed or chained with it.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s directory: %w", what, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s directory: %w", what, err)
	}
	return nil
}

// ReadKeyFile reads an existing key file; it never creates one (a missing
// file gives an error matching fs.ErrNotExist). It refuses a file that is
// not regular, open to group or others, not exactly size bytes, or all
// zeros.
func ReadKeyFile(path, what string, size int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat() // the open file, so the checks apply to what is read
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := CheckPrivateFile(fi, path, what); err != nil {
		return nil, err
	}
	switch {
	case fi.Size() != int64(size):
		return nil, fmt.Errorf("%s file %s is %d bytes, want exactly %d raw bytes", what, path, fi.Size(), size)
	}
	buf := make([]byte, size+1) // the spare byte catches a file grown since Stat
	n, err := io.ReadFull(f, buf)
	if n != size || !errors.Is(err, io.ErrUnexpectedEOF) {
		Zero(buf)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return nil, fmt.Errorf("%s file %s changed size while being read", what, path)
	}
	key := buf[:size:size]
	if allZero(key) {
		return nil, fmt.Errorf("%s file %s holds an all-zero key", what, path)
	}
	return key, nil
}

// CheckPrivateFile is the rule every key file is held to: a regular file
// that neither group nor others may read or write. fi describes the open
// file at path; what names the key in the error.
func CheckPrivateFile(fi fs.FileInfo, path, what string) error {
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s file %s is not a regular file", what, path)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s file %s has mode %#o: it must not be readable or writable by group or others (chmod 600 %s)",
			what, path, fi.Mode().Perm(), path)
	}
	return nil
}

// ReadPrivateFile reads a key file of any format (a PEM private key) under
// the rule of CheckPrivateFile, up to 1 MiB.
func ReadPrivateFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := CheckPrivateFile(fi, path, what); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}
