// Package keystone tests Keywarden behind a real OpenStack Keystone, the way
// a cloud uses it: the openstack CLI with password auth and the service
// catalog, castellan as Nova and Cinder call it, token revocation, and a
// Keystone outage. One Keystone serves every test of the package (its setup
// takes tens of seconds).
package keystone

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/keywarden/keywarden/kms/keystone"
	"github.com/keywarden/keywarden/tests/keystonetest"
	"github.com/keywarden/keywarden/tests/testserver"
)

var (
	ks       *keystonetest.Server
	setupErr error
	ksSetup  time.Duration
	world    fixture
)

// user is one Keystone user of the fixture, with a role on one project.
type user struct {
	Name, ID, Password, Project, ProjectID, Role string
}

type fixture struct {
	admin *gophercloud.ServiceClient
	users map[string]*user
}

// The fixture: Keywarden's service user (role service on project service,
// as keystonemiddleware deployments do), a second service user for
// castellan's service token, creators of two projects and a reader.
var people = []user{
	{Name: "keywarden", Project: "service", Role: "service"},
	{Name: "nova", Project: "service", Role: "service"},
	{Name: "alice", Project: "alpha", Role: "creator"},
	{Name: "bob", Project: "beta", Role: "creator"},
	{Name: "rita", Project: "alpha", Role: "reader"},
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(0) // tens of seconds of Keystone setup: not a unit test
	}
	if missing := keystonetest.Missing(); missing != "" {
		if os.Getenv("KEYWARDEN_REQUIRE_VAULT") != "" { // make test: every peer must be there
			fmt.Fprintln(os.Stderr, missing)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "SKIP:", missing)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "keystone-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	start := time.Now()
	ks, setupErr = keystonetest.Start(filepath.Join(dir, "keystone"))
	if setupErr == nil {
		setupErr = world.build(context.Background())
	}
	ksSetup = time.Since(start)
	fmt.Printf("keystone: set up in %.1f s\n", ksSetup.Seconds())
	code := 1
	if setupErr != nil {
		fmt.Fprintln(os.Stderr, "keystone setup:", setupErr)
	} else {
		code = runTests(m)
	}
	if ks != nil {
		ks.Stop()
		if code != 0 {
			if b, err := os.ReadFile(ks.LogPath()); err == nil && len(b) > 4000 {
				os.Stderr.Write(b[len(b)-4000:])
			}
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// runTests runs the package's tests; testserver.Main would os.Exit before
// Keystone is stopped, so its cleanup is done here.
func runTests(m *testing.M) int { return testserver.RunAndClean(m) }

func (f *fixture) build(ctx context.Context) error {
	admin, err := ks.Admin(ctx)
	if err != nil {
		return fmt.Errorf("admin sign-in: %w", err)
	}
	f.admin, f.users = admin, map[string]*user{}
	roleIDs := map[string]string{}
	all, err := roles.List(admin, nil).AllPages(ctx)
	if err != nil {
		return err
	}
	existing, err := roles.ExtractRoles(all)
	if err != nil {
		return err
	}
	for _, r := range existing {
		roleIDs[r.Name] = r.ID
	}
	projectIDs := map[string]string{}
	for _, p := range people {
		if roleIDs[p.Role] == "" {
			r, err := roles.Create(ctx, admin, roles.CreateOpts{Name: p.Role}).Extract()
			if err != nil {
				return fmt.Errorf("role %s: %w", p.Role, err)
			}
			roleIDs[p.Role] = r.ID
		}
		if projectIDs[p.Project] == "" {
			pr, err := projects.Create(ctx, admin, projects.CreateOpts{Name: p.Project, DomainID: "default"}).Extract()
			if err != nil {
				return fmt.Errorf("project %s: %w", p.Project, err)
			}
			projectIDs[p.Project] = pr.ID
		}
		u := p
		u.Password = "pw-" + p.Name + "-" + fmt.Sprint(time.Now().UnixNano())
		created, err := users.Create(ctx, admin, users.CreateOpts{Name: p.Name, DomainID: "default", Password: u.Password}).Extract()
		if err != nil {
			return fmt.Errorf("user %s: %w", p.Name, err)
		}
		u.ID, u.ProjectID = created.ID, projectIDs[p.Project]
		if err := roles.Assign(ctx, admin, roleIDs[p.Role], roles.AssignOpts{UserID: u.ID, ProjectID: u.ProjectID}).ExtractErr(); err != nil {
			return fmt.Errorf("role %s for %s: %w", p.Role, p.Name, err)
		}
		f.users[p.Name] = &u
	}
	return nil
}

// token signs name in with its password, scoped to its project.
func token(t testing.TB, name string) string {
	t.Helper()
	tok, _ := tokenExpiring(t, name)
	return tok
}

// shortToken is a token of name that expires in about life: Keystone's
// tokens live an hour, but one got with an application credential expires
// with the credential.
func shortToken(t testing.TB, name string, life time.Duration) (string, time.Time) {
	t.Helper()
	u := world.users[name]
	tok := token(t, name)
	pc, err := openstack.NewClient(ks.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	pc.SetToken(tok)
	sc, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(life).UTC()
	var ac struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	// (Keystone writes this expires_at without a zone, which Extract refuses.)
	err = applicationcredentials.Create(context.Background(), sc, u.ID, applicationcredentials.CreateOpts{
		Name: fmt.Sprintf("short-%d", time.Now().UnixNano()), ExpiresAt: &exp,
	}).ExtractIntoStructPtr(&ac, "application_credential")
	if err != nil {
		t.Fatalf("application credential for %s: %v", name, err)
	}
	res := tokens.Create(context.Background(), sc, &tokens.AuthOptions{
		ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: ac.Secret,
	})
	short, err := res.ExtractTokenID()
	if err != nil {
		t.Fatalf("token from an application credential: %v", err)
	}
	// Its expires_at has no zone either: read it as Keywarden does.
	var info struct {
		ExpiresAt keystone.Time `json:"expires_at"`
	}
	if err := res.ExtractIntoStructPtr(&info, "token"); err != nil {
		t.Fatal(err)
	}
	if info.ExpiresAt.After(exp.Add(time.Second)) {
		t.Fatalf("the token expires at %v, after its credential (%v)", info.ExpiresAt, exp)
	}
	return short, info.ExpiresAt.Time
}

// tokenExpiring is token and its expiry.
func tokenExpiring(t testing.TB, name string) (string, time.Time) {
	t.Helper()
	u := world.users[name]
	pc, err := openstack.NewClient(ks.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	res := tokens.Create(context.Background(), sc, &tokens.AuthOptions{
		Username: u.Name, Password: u.Password, DomainName: "Default",
		Scope: tokens.Scope{ProjectName: u.Project, DomainName: "Default"},
	})
	tok, err := res.ExtractTokenID()
	if err != nil {
		t.Fatalf("token for %s: %v", name, err)
	}
	info, err := res.ExtractToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok, info.ExpiresAt
}
