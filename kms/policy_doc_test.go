package kms_test

import (
	"os"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/kms"
)

// docs/POLICY.md is the default table; regenerate it with
// `go run ./cmd/keywarden policy > docs/POLICY.md`.
func TestPolicyDocMatchesTable(t *testing.T) {
	b, err := os.ReadFile("../docs/POLICY.md")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), kms.DefaultPolicyDoc(); got != want {
		t.Fatalf("docs/POLICY.md differs from the policy table; regenerate it with\n  go run ./cmd/keywarden policy > docs/POLICY.md")
	}
}

func TestPolicyOverrides(t *testing.T) {
	for text, bad := range map[string]bool{
		"role:admin":                     false,
		"rule:project_admin or acl_user": false,
		"not (private and role:x)":       false,
		"role:admin or":                  true,
		"(role:admin":                    true,
		"rule:nosuch":                    true,
		"frobnicate":                     true,
		"role:admin role:creator":        true,
	} {
		_, err := kms.NewPolicy(map[string]string{"secret:get": text})
		if (err != nil) != bad {
			t.Errorf("%q: err %v, want error %v", text, err, bad)
		}
	}
	if _, err := kms.NewPolicy(map[string]string{"secret:frob": "true"}); err == nil || !strings.Contains(err.Error(), "unknown rule") {
		t.Errorf("unknown rule: %v", err)
	}
	// A rule that names itself through another is a cycle, not a hang.
	if _, err := kms.NewPolicy(map[string]string{"admin": "rule:all_users"}); err == nil {
		t.Error("a cycle compiled")
	}
}
