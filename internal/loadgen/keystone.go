package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// keystoneToken signs in to Keystone with an openrc's environment, as the
// openstack CLI does, and returns the project-scoped token.
func keystoneToken(ctx context.Context) (string, error) {
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	ao := gophercloud.AuthOptions{
		IdentityEndpoint: env("OS_AUTH_URL", ""), Username: env("OS_USERNAME", ""), Password: env("OS_PASSWORD", ""),
		DomainName: env("OS_USER_DOMAIN_NAME", "Default"),
		Scope:      &gophercloud.AuthScope{ProjectName: env("OS_PROJECT_NAME", ""), DomainName: env("OS_PROJECT_DOMAIN_NAME", "Default")},
	}
	if ao.IdentityEndpoint == "" || ao.Username == "" || ao.Password == "" || ao.Scope.ProjectName == "" {
		return "", errors.New("bench --keystone: set OS_AUTH_URL, OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME (an openrc)")
	}
	pc, err := openstack.AuthenticatedClient(ctx, ao)
	if err != nil {
		return "", fmt.Errorf("bench --keystone: signing in: %w", err)
	}
	return pc.Token(), nil
}
