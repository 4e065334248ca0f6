package kms

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// secretDiffFmt is secretDiff as it was written with fmt; the fmt-free one
// must give the same text (the audit trail's detail).
func secretDiffFmt(before, after *Secret) string {
	if after == nil {
		return "deleted (project " + before.Project + ")"
	}
	var d []string
	add := func(name string, b, a any) {
		if fmt.Sprint(b) != fmt.Sprint(a) {
			d = append(d, fmt.Sprintf("%s: %v → %v", name, b, a))
		}
	}
	if before == nil {
		before = &Secret{}
	}
	acl := func(a *ACL) string {
		if a == nil {
			return "project-access"
		}
		access := "project-access"
		if !a.ProjectAccess {
			access = "private"
		}
		return fmt.Sprintf("%s users=%s@%s", access, strings.Join(a.Users, ","), a.Source)
	}
	keys := func(m map[string]string) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return "[" + strings.Join(ks, ",") + "]"
	}
	add("state", before.State, after.State)
	add("deletion_policy", before.EffectivePolicy(), after.EffectivePolicy())
	add("acl", acl(before.ACL), acl(after.ACL))
	add("consumers", len(before.Consumers), len(after.Consumers))
	add("payload", before.HasPayload, after.HasPayload)
	add("name", fmt.Sprintf("%q", before.Name), fmt.Sprintf("%q", after.Name))
	add("metadata", keys(before.Metadata), keys(after.Metadata))
	add("attributes", keys(before.Attributes), keys(after.Attributes))
	add("expiration", timeString(before.Expiration), timeString(after.Expiration))
	return strings.Join(d, "; ")
}

func TestSecretDiffText(t *testing.T) {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600))
	secrets := []*Secret{
		nil,
		{},
		{Project: "p", State: Active, Name: "k", HasPayload: true},
		{Project: "p", State: Destroyed, Name: "k\"\n\x00é", DeletionPolicy: OnLastConsumer,
			Consumers: []Consumer{{Service: "nova"}, {Service: "glance"}}, Expiration: &exp,
			Metadata: map[string]string{"b": "1", "a": "2"}, Attributes: map[string]string{"x": "y"}},
		{Project: "p", State: Active, ACL: &ACL{Users: []string{"u1", "u2"}, Source: "jwt:i", ProjectAccess: false}},
		{Project: "p", State: Active, ACL: &ACL{ProjectAccess: true}, Metadata: map[string]string{}},
		{Project: "p", State: PreActive, Metadata: map[string]string{"deletion_policy": "on_last_consumer"}},
	}
	n := 0
	for _, b := range secrets {
		for _, a := range secrets {
			if b == nil && a == nil {
				continue
			}
			got, want := secretDiff(b, a), secretDiffFmt(b, a)
			if got != want {
				t.Errorf("secretDiff(%+v, %+v) = %q, want %q", b, a, got, want)
			}
			if want != "" {
				n++
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d pairs differ: the cases do not exercise the diff", n)
	}
}

func BenchmarkSecretDiffCreate(b *testing.B) {
	after := &Secret{Project: "p", State: Active, Name: "bench", HasPayload: true}
	b.Run("now", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			secretDiff(nil, after)
		}
	})
	b.Run("fmt", func(b *testing.B) { // as it was
		b.ReportAllocs()
		for b.Loop() {
			secretDiffFmt(nil, after)
		}
	})
}
