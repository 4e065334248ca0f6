package hostlib

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPassphraseConversion(t *testing.T) {
	key := []byte{0x04, 0x00, 0xab, 0x10, 0xff}
	cases := []struct {
		typ      string
		material []byte
		want     string
		legacy   string // "" = no distinct legacy form
	}{
		{TypeSymmetric, key, "0400ab10ff", "40ab10ff"},
		{TypeOpaque, key, "0400ab10ff", "40ab10ff"},
		{TypeSymmetric, []byte{0xab, 0x10}, "ab10", ""},
		{TypePassphrase, []byte("tr0ub4dor&3\n"), "tr0ub4dor&3\n", ""}, // newline is part of it
	}
	for _, c := range cases {
		s := NewSecret("id", c.typ, append([]byte(nil), c.material...))
		got, err := Passphrase(s)
		if err != nil || string(got) != c.want {
			t.Errorf("%s %x: passphrase %q %v, want %q", c.typ, c.material, got, err, c.want)
		}
		l, ok := LegacyPassphrase(s)
		if ok != (c.legacy != "") || string(l) != c.legacy {
			t.Errorf("%s %x: legacy %q %v, want %q", c.typ, c.material, l, ok, c.legacy)
		}
	}
	for _, typ := range []string{"private", "public", "certificate", ""} {
		if _, err := Passphrase(NewSecret("id", typ, []byte{1})); !errors.Is(err, ErrWrongType) {
			t.Errorf("type %q: %v, want ErrWrongType", typ, err)
		}
	}
	if _, err := Passphrase(NewSecret("id", TypeSymmetric, nil)); !errors.Is(err, ErrWrongType) {
		t.Errorf("empty material: %v", err)
	}
}

func TestSecretNeverPrintsAndZeroes(t *testing.T) {
	mat := []byte("hunter2-hunter2-hunter2")
	s := NewSecret("abc", TypePassphrase, mat)
	j, _ := json.Marshal(s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), string(j)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("material printed: %s", out)
		}
	}
	s.Close()
	s.Close()
	for _, b := range mat {
		if b != 0 {
			t.Fatalf("buffer not zeroed after Close: %q", mat)
		}
	}
	if s.Len() != 0 {
		t.Fatal("closed secret still has material")
	}
}

func TestProfileFor(t *testing.T) {
	cases := []struct {
		s    *Secret
		want string
	}{
		{NewSecret("a", TypeSymmetric, make([]byte, 32)), ProfileFast},
		{NewSecret("a", TypeOpaque, make([]byte, 16)), ProfileFast},
		{NewSecret("a", TypeSymmetric, make([]byte, 8)), ProfileDefault},
		{NewSecret("a", TypePassphrase, make([]byte, 64)), ProfileDefault},
	}
	for _, c := range cases {
		if got := ProfileFor(c.s); got.Name != c.want {
			t.Errorf("%v: %s, want %s", c.s, got.Name, c.want)
		}
	}
	pass := NewSecret("a", TypePassphrase, []byte("x"))
	if p, err := ParseProfile("fast", pass); err != nil || p.Name != ProfileFast {
		t.Errorf("explicit fast: %v %v", p.Name, err)
	}
	if _, err := ParseProfile("turbo", pass); err == nil {
		t.Error("unknown profile accepted")
	}
	if FastProfile.PBKDF.Type != "pbkdf2" || FastProfile.PBKDF.Iterations == 0 {
		t.Errorf("fast profile must force pbkdf2: %+v", FastProfile.PBKDF)
	}
}
