package consumers

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	img = Consumer{Service: "image", ResourceType: "image", ResourceID: "i-1"}
	vol = Consumer{Service: "volume", ResourceType: "volume", ResourceID: "v-1"}
)

func TestValidate(t *testing.T) {
	if err := Validate(img); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Consumer{
		{ResourceType: "image", ResourceID: "1"},
		{Service: "image", ResourceID: "1"},
		{Service: "image", ResourceType: "image"},
		{Service: strings.Repeat("s", MaxField+1), ResourceType: "image", ResourceID: "1"},
		{Service: "image", ResourceType: "image", ResourceID: "1\n2"},
	} {
		if err := Validate(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%+v) = %v; want ErrInvalid", c, err)
		}
	}
}

func TestAddRemoveIdempotent(t *testing.T) {
	var cs []Consumer
	cs, added, err := Add(cs, img)
	if err != nil || !added || len(cs) != 1 {
		t.Fatalf("first add: %v %v %v", cs, added, err)
	}
	again := img
	again.Created = time.Now() // not part of the identity
	cs2, added, _ := Add(cs, again)
	if added || len(cs2) != 1 {
		t.Fatalf("second add changed the list: %v", cs2)
	}
	cs3, _, _ := Add(cs, vol)
	if len(cs) != 1 || len(cs3) != 2 {
		t.Fatalf("Add modified its input: %v / %v", cs, cs3)
	}
	cs4, removed := Remove(cs3, img)
	if !removed || len(cs4) != 1 || !cs4[0].Same(vol) || len(cs3) != 2 {
		t.Fatalf("remove: %v (input %v)", cs4, cs3)
	}
	if _, removed := Remove(cs4, img); removed {
		t.Fatal("removing an absent consumer reported a removal")
	}
}

func TestAddLimit(t *testing.T) {
	cs := make([]Consumer, MaxPerSecret)
	for i := range cs {
		cs[i] = Consumer{Service: "s", ResourceType: "t", ResourceID: strings.Repeat("x", i+1)}
	}
	if _, _, err := Add(cs, img); !errors.Is(err, ErrInvalid) {
		t.Fatalf("add past the limit: %v", err)
	}
	if _, added, err := Add(cs, cs[3]); err != nil || added {
		t.Fatalf("re-adding an existing consumer at the limit: %v %v", added, err)
	}
}

func TestCheckDelete(t *testing.T) {
	if err := CheckDelete(nil, false, false); err != nil {
		t.Fatal(err)
	}
	err := CheckDelete([]Consumer{img, vol}, false, true)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "image/image/i-1, volume/volume/v-1") {
		t.Fatalf("unforced: %v", err)
	}
	if err := CheckDelete([]Consumer{img}, true, false); !errors.Is(err, ErrForceDenied) {
		t.Fatalf("forced without right: %v", err)
	}
	if err := CheckDelete([]Consumer{img}, true, true); err != nil {
		t.Fatal(err)
	}
}

func TestDescribeCaps(t *testing.T) {
	cs := make([]Consumer, 25)
	for i := range cs {
		cs[i] = vol
	}
	if d := Describe(cs); !strings.HasSuffix(d, "and 15 more") || strings.Count(d, "volume/volume") != 10 {
		t.Fatalf("Describe = %q", d)
	}
}

func TestPage(t *testing.T) {
	cs := []Consumer{img, vol, img}
	if got := Page(cs, 1, 1); len(got) != 1 || !got[0].Same(vol) {
		t.Fatalf("Page(1,1) = %v", got)
	}
	if got := Page(cs, 5, 10); len(got) != 0 {
		t.Fatalf("Page past end = %v", got)
	}
	if got := Page(cs, -1, 0); len(got) != 3 {
		t.Fatalf("Page(-1, 0) = %v", got)
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{
		"": "", "retain": Retain, "do_not_delete": Retain, " On_Image_Deletion ": OnLastConsumer,
		"on_last_consumer": OnLastConsumer,
	} {
		got, err := ParsePolicy(in)
		if err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParsePolicy("sometimes"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown policy: %v", err)
	}
}

func TestParseProperties(t *testing.T) {
	p, err := ParseProperties(map[string]string{
		"OS_Encrypt_Format": "LUKSv1", "os_encrypt_key_id": "k1",
		"cinder_encryption_key_id": "legacy", "cinder_encryption_key_deletion_policy": "on_image_deletion",
		"os_decrypt_size": "1073741824",
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Format != "LUKSv1" || p.KeyID != "k1" || p.Policy != OnLastConsumer || p.DecryptSize != 1<<30 {
		t.Fatalf("properties %+v", p)
	}
	if _, err := ParseProperties(map[string]string{"os_decrypt_size": "big"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad size: %v", err)
	}
	if _, err := ParseProperties(map[string]string{"os_encrypt_key_deletion_policy": "never"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad policy: %v", err)
	}
}

func TestCloneMetadata(t *testing.T) {
	out := CloneMetadata(map[string]string{
		"os_encrypt_format": "luks", "os_decrypt_size": "10", "os_encrypt_key_id": "src",
		"os_encrypt_key_deletion_policy": "on_image_deletion", "cinder_encryption_key_id": "src", "mine": "x",
	})
	if len(out) != 3 || out["os_encrypt_format"] != "luks" || out["os_decrypt_size"] != "10" || out["mine"] != "x" {
		t.Fatalf("CloneMetadata = %v", out)
	}
	if CloneMetadata(map[string]string{"os_encrypt_key_id": "x"}) != nil {
		t.Fatal("nothing left should be nil")
	}
}

func TestOrphanRule(t *testing.T) {
	r := OrphanRule{Grace: time.Minute}
	if ok, _ := r.Orphan(OnLastConsumer, 1, time.Hour); ok {
		t.Fatal("a used secret is no orphan")
	}
	if ok, _ := r.Orphan(OnLastConsumer, 0, time.Second); ok {
		t.Fatal("within grace")
	}
	if ok, why := r.Orphan(OnLastConsumer, 0, time.Hour); !ok || !strings.Contains(why, "on_last_consumer") {
		t.Fatalf("on_last_consumer orphan: %v %q", ok, why)
	}
	if ok, _ := r.Orphan(Retain, 0, 1000*time.Hour); ok {
		t.Fatal("retain without OlderThan is kept")
	}
	// A retain secret is never an orphan, however old (issue 8 #1); OlderThan
	// only lengthens the idle time of on_last_consumer secrets.
	r.OlderThan = 24 * time.Hour
	if ok, _ := r.Orphan(Retain, 0, 10000*time.Hour); ok {
		t.Fatal("an old unused retain secret counted as an orphan")
	}
	if ok, _ := r.Orphan(OnLastConsumer, 0, 23*time.Hour); ok {
		t.Fatal("younger than OlderThan")
	}
	if ok, _ := r.Orphan(OnLastConsumer, 0, 25*time.Hour); !ok {
		t.Fatal("older than OlderThan")
	}
}
