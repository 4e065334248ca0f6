// Package keystonetest runs a real OpenStack Keystone (Debian's
// python3-keystone under uwsgi) on loopback for the tests of Keystone token
// validation: sqlite in WAL mode, fernet tokens, an in-process cache, ONE
// uwsgi process with ONE thread (its cache and sqlite connections are per
// process and per thread). Setup is slow (keystone-manage imports all of
// Keystone each time): share one Server across a package's tests.
package keystonetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

const wsgiFile = "/usr/bin/keystone-wsgi-public"

// Missing names what is not installed, or "" when Keystone can run here.
func Missing() string {
	for _, p := range []string{"/usr/bin/keystone-manage", wsgiFile, "/usr/bin/uwsgi", "/usr/lib/uwsgi/plugins/python3_plugin.so"} {
		if _, err := os.Stat(p); err != nil {
			return "Keystone needs Debian's python3-keystone, uwsgi-core and uwsgi-plugin-python3 (tests/ensure-deps.sh installs them): " + p + " missing"
		}
	}
	return ""
}

// Server is a running Keystone with its admin credentials.
type Server struct {
	Dir           string
	Addr          string // 127.0.0.1:port
	AuthURL       string // http://127.0.0.1:port/v3
	AdminPassword string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start sets Keystone up in dir (created), from the cached template when
// there is one, and serves it; Stop ends it.
func Start(dir string) (*Server, error) {
	if m := Missing(); m != "" {
		return nil, errors.New(m)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{Dir: dir, Addr: addr, AuthURL: "http://" + addr + "/v3", AdminPassword: "adm-" + randHex(12)}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`[database]
connection = sqlite:///%[1]s/keystone.sqlite
[token]
provider = fernet
[fernet_tokens]
key_repository = %[1]s/fernet-keys
[fernet_receipts]
key_repository = %[1]s/fernet-receipts
[credential]
key_repository = %[1]s/credential-keys
[cache]
enabled = true
backend = dogpile.cache.memory
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "keystone.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	tpl := templateDir()
	if tpl != "" && s.fromTemplate(tpl) == nil {
		return s, s.Resume()
	}
	if err := s.setUp(); err != nil {
		return nil, err
	}
	if tpl != "" {
		s.saveTemplate(tpl) // best effort: the next run sets up afresh otherwise
	}
	return s, s.Resume()
}

// setUp makes a fresh Keystone in s.Dir: schema, keys, admin, catalog.
func (s *Server) setUp() error {
	// The key repositories and the schema do not depend on each other.
	owner := []string{"--keystone-user", "root", "--keystone-group", "root"}
	if u := os.Getenv("USER"); os.Getuid() != 0 && u != "" {
		owner = []string{"--keystone-user", u, "--keystone-group", u}
	}
	errs := make(chan error, 3)
	go func() { errs <- s.manage(nil, "db_sync") }()
	go func() { errs <- s.manage(nil, append([]string{"fernet_setup"}, owner...)...) }()
	go func() { errs <- s.manage(nil, append([]string{"credential_setup"}, owner...)...) }()
	var err error
	for range 3 {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return err
	}
	// WAL: a read transaction left open must not block the next write.
	if err := s.sql("PRAGMA journal_mode=wal"); err != nil {
		return err
	}
	// The admin password through the environment, never argv.
	return s.manage([]string{"OS_BOOTSTRAP_PASSWORD=" + s.AdminPassword}, "bootstrap",
		"--bootstrap-public-url", s.AuthURL, "--bootstrap-region-id", "RegionOne")
}

// sql runs one statement on Keystone's database (its "?" bound to args).
func (s *Server) sql(stmt string, args ...string) error {
	out, err := exec.Command("/usr/bin/python3", append([]string{"-c",
		"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2], sys.argv[3:]); c.commit(); c.close()",
		filepath.Join(s.Dir, "keystone.sqlite"), stmt}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("keystone: %s: %v: %s", stmt, err, out)
	}
	return nil
}

// A freshly bootstrapped Keystone (schema, keys, admin) is kept in the
// user's cache dir, one per python3-keystone version, and copied for the
// next runs: keystone-manage costs tens of seconds, a copy nothing.
// KEYWARDEN_KEYSTONE_FRESH=1 sets up afresh every time.
var templateParts = []string{"keystone.sqlite", "fernet-keys", "fernet-receipts", "credential-keys", "admin-password"}

func templateDir() string {
	if os.Getenv("KEYWARDEN_KEYSTONE_FRESH") != "" {
		return ""
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	v, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "python3-keystone").Output()
	if err != nil || len(v) == 0 {
		return ""
	}
	return filepath.Join(cache, "keywarden", "keystone-"+strings.NewReplacer(":", "_", "/", "_").Replace(string(v)))
}

func (s *Server) fromTemplate(tpl string) error {
	pw, err := os.ReadFile(filepath.Join(tpl, "admin-password"))
	if err != nil {
		return err
	}
	for _, part := range templateParts[:4] {
		if err := copyTree(filepath.Join(tpl, part), filepath.Join(s.Dir, part)); err != nil {
			return err
		}
	}
	s.AdminPassword = strings.TrimSpace(string(pw))
	// The catalog's identity endpoint names this run's port.
	return s.sql("UPDATE endpoint SET url = ?", s.AuthURL)
}

func (s *Server) saveTemplate(tpl string) {
	tmp, err := os.MkdirTemp(filepath.Dir(tpl), ".keystone-tpl-")
	if err != nil {
		if os.MkdirAll(filepath.Dir(tpl), 0o700) != nil {
			return
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(tpl), ".keystone-tpl-"); err != nil {
			return
		}
	}
	defer os.RemoveAll(tmp)
	if s.sql("PRAGMA wal_checkpoint(TRUNCATE)") != nil {
		return
	}
	for _, part := range templateParts[:4] {
		if copyTree(filepath.Join(s.Dir, part), filepath.Join(tmp, part)) != nil {
			return
		}
	}
	if os.WriteFile(filepath.Join(tmp, "admin-password"), []byte(s.AdminPassword), 0o600) != nil {
		return
	}
	os.Rename(tmp, tpl) // fails harmlessly when another run saved one first
}

// copyTree copies a file or a directory of files, keeping their modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}

func (s *Server) manage(env []string, args ...string) error {
	cmd := exec.Command("/usr/bin/keystone-manage", append([]string{"--config-file", filepath.Join(s.Dir, "keystone.conf")}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("keystone-manage %s: %v\n%s", args[0], err, out)
	}
	return nil
}

// Resume starts the uwsgi server (again, after Stop) on the same address
// and waits until it answers.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("/usr/bin/uwsgi", "--plugin", "python3", "--http-socket", s.Addr,
		"--wsgi-file", wsgiFile, "--processes", "1", "--threads", "1", "--need-app",
		// --http-socket closes the connection after each answer; saying so
		// keeps clients from reusing it (a POST on it would fail).
		"--add-header", "Connection: close")
	cmd.Env = append(os.Environ(), "OS_KEYSTONE_CONFIG_DIR="+s.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(s.AuthURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(s.LogPath())
			return fmt.Errorf("keystone (uwsgi) exited during start-up:\n%s", tail(string(b), 3000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return errors.New("keystone did not answer within 90 s")
		}
	}
}

// Stop kills the uwsgi server: Keystone becomes unreachable (connection
// refused) until Resume.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// LogPath is uwsgi's log, one line per request.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "uwsgi.log") }

// Requests counts the requests uwsgi logged whose request line starts with
// prefix, e.g. "GET /v3/auth/tokens". uwsgi logs a request after answering
// it, so the count is read until it holds still for 300 ms.
func (s *Server) Requests(prefix string) int {
	read := func() int {
		b, _ := os.ReadFile(s.LogPath())
		return countRequests(string(b), prefix)
	}
	n, since, deadline := read(), time.Now(), time.Now().Add(5*time.Second)
	for time.Since(since) < 300*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if m := read(); m != n {
			n, since = m, time.Now()
		}
	}
	return n
}

func countRequests(log, prefix string) int {
	n := 0
	for line := range strings.SplitSeq(log, "\n") {
		// [pid: ...] 127.0.0.1 () {34 vars in 567 bytes} [date] GET /v3/... => generated ...
		if _, rest, ok := strings.Cut(line, "] "+prefix); ok && strings.Contains(rest, "=> generated") {
			n++
		}
	}
	return n
}

// Admin is an identity v3 client signed in as the bootstrap admin (again
// when its token expires).
func (s *Server) Admin(ctx context.Context) (*gophercloud.ServiceClient, error) {
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: s.AuthURL, Username: "admin", Password: s.AdminPassword, DomainName: "Default",
		Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainName: "Default"}, AllowReauth: true,
	})
	if err != nil {
		return nil, err
	}
	return openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
