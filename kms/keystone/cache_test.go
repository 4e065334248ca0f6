package keystone

import (
	"testing"
	"time"
)

// Revocation events match tokens as Keystone's own rule does: every
// attribute the event names must match, and the token must have been
// issued no later than issued_before.
func TestEventMatches(t *testing.T) {
	issued := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	tok := &entry{
		issued: issued, audit: []string{"aud1", "chain1"}, user: "u1", userDomain: "d-users",
		project: "p1", scopeDomain: "d-projects", roleIDs: []string{"r-creator", "r-reader"},
	}
	for name, c := range map[string]struct {
		ev   event
		want bool
	}{
		"token revoked (audit id)":        {event{AuditID: "aud1", IssuedBefore: Time{issued}}, true},
		"another token":                   {event{AuditID: "aud2", IssuedBefore: Time{issued}}, false},
		"its chain":                       {event{AuditChainID: "chain1", IssuedBefore: Time{issued.Add(time.Hour)}}, true},
		"user's tokens":                   {event{UserID: "u1", IssuedBefore: Time{issued.Add(time.Second)}}, true},
		"user's later tokens only":        {event{UserID: "u1", IssuedBefore: Time{issued.Add(-time.Second)}}, false},
		"another user":                    {event{UserID: "u2", IssuedBefore: Time{issued}}, false},
		"role removed in the project":     {event{UserID: "u1", ProjectID: "p1", RoleID: "r-reader", IssuedBefore: Time{issued}}, true},
		"role removed in another project": {event{UserID: "u1", ProjectID: "p2", IssuedBefore: Time{issued}}, false},
		"role the token lacks":            {event{RoleID: "r-admin", IssuedBefore: Time{issued}}, false},
		"project disabled":                {event{ProjectID: "p1", IssuedBefore: Time{issued}}, true},
		"user's domain disabled":          {event{DomainID: "d-users", IssuedBefore: Time{issued}}, true},
		"project's domain disabled":       {event{DomainID: "d-projects", IssuedBefore: Time{issued}}, true},
		"another domain":                  {event{DomainID: "d-other", IssuedBefore: Time{issued}}, false},
		"trust deleted, token not trust":  {event{TrustID: "t1", IssuedBefore: Time{issued}}, false},
	} {
		if got := c.ev.matches(tok); got != c.want {
			t.Errorf("%s: matches = %v, want %v", name, got, c.want)
		}
	}
}

// A validation in flight when an event arrives must not be cached past it.
func TestRevokedSince(t *testing.T) {
	now := time.Now()
	tok := &entry{issued: now.Add(-time.Minute), audit: []string{"a"}}
	var r revocations
	r.add([]*event{{AuditID: "a", IssuedBefore: Time{now}}}, now)
	if !r.revokedSince(tok, now.Add(-time.Second)) {
		t.Error("an event received during the validation was missed")
	}
	if r.revokedSince(tok, now.Add(time.Second)) {
		t.Error("an event received before the validation started counted")
	}
	r.add(nil, now.Add(2*keepEvents))
	if len(r.recent) != 0 {
		t.Errorf("old events kept: %d", len(r.recent))
	}
}

func TestPlausible(t *testing.T) {
	for raw, want := range map[string]bool{
		"gAAAAABn-abc_def": true, "": false, "two words": false, "tab\tin": false, "é": false,
		string(make([]byte, maxTokenLen+1)): false,
	} {
		if plausible(raw) != want {
			t.Errorf("plausible(%.20q) != %v", raw, want)
		}
	}
}

func TestNormalizeAuthURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://k:5000":            "http://k:5000/v3",
		"http://k:5000/":           "http://k:5000/v3",
		"https://k/identity/v3/":   "https://k/identity/v3",
		"http://k:5000/v3":         "http://k:5000/v3",
		"k:5000":                   "",
		"ftp://k/v3":               "",
		"http://user:pw@k:5000/v3": "",
		"http://k:5000/v3?x=1":     "",
	} {
		got, err := normalizeAuthURL(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("normalizeAuthURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestTimeWithOrWithoutZone(t *testing.T) {
	want := time.Date(2026, 12, 6, 7, 35, 47, 172693000, time.UTC)
	for _, in := range []string{`"2026-12-06T07:35:47.172693Z"`, `"2026-12-06T07:35:47.172693"`, `"2026-12-06T08:35:47.172693+01:00"`} {
		var got Time
		if err := got.UnmarshalJSON([]byte(in)); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v", in, got.Time, err)
		}
	}
	var bad Time
	if bad.UnmarshalJSON([]byte(`"yesterday"`)) == nil {
		t.Error("a non-time was read")
	}
}
