package consumers

import (
	"maps"
	"strconv"
	"strings"
	"time"
)

// Policy says what happens to a secret when its users go away.
type Policy string

const (
	// Retain keeps the secret until someone deletes it (Barbican behaviour).
	Retain Policy = "retain"
	// OnLastConsumer destroys the secret when its last consumer is removed
	// (an image's os_encrypt_key_deletion_policy=on_image_deletion).
	OnLastConsumer Policy = "on_last_consumer"
)

// ParsePolicy accepts our names and those of the encrypted-image
// specification and of Cinder: on_image_deletion means the key goes with
// the image, do_not_delete that it stays. Empty gives "" (caller's default).
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "retain", "do_not_delete":
		return Retain, nil
	case "on_last_consumer", "on_image_deletion":
		return OnLastConsumer, nil
	}
	return "", invalid("unknown deletion policy %q: use retain (do_not_delete) or on_last_consumer (on_image_deletion)", s)
}

// DestroyAfterRemove reports whether removing a consumer, leaving remaining,
// must destroy the secret.
func DestroyAfterRemove(p Policy, remaining int) bool {
	return p == OnLastConsumer && remaining == 0
}

// Metadata and image property names of the encrypted-image specification,
// and the Cinder names they replace.
const (
	MetaFormat         = "os_encrypt_format"
	MetaKeyID          = "os_encrypt_key_id"
	MetaDeletionPolicy = "os_encrypt_key_deletion_policy"
	MetaDecryptSize    = "os_decrypt_size"

	LegacyMetaKeyID          = "cinder_encryption_key_id"
	LegacyMetaDeletionPolicy = "cinder_encryption_key_deletion_policy"
)

// Properties are the encryption properties of an image, or of a secret
// whose metadata carries them.
type Properties struct {
	Format      string // as given, e.g. "luks"; kms normalizes it
	KeyID       string
	Policy      Policy
	DecryptSize int64 // bytes; 0 when absent
}

// ParseProperties reads the properties from metadata (keys compared
// case-insensitively); the specification's names win over Cinder's.
func ParseProperties(m map[string]string) (Properties, error) {
	get := func(names ...string) string {
		for _, n := range names {
			for k, v := range m {
				if strings.EqualFold(k, n) && v != "" {
					return v
				}
			}
		}
		return ""
	}
	var p Properties
	var err error
	p.Format = get(MetaFormat)
	p.KeyID = get(MetaKeyID, LegacyMetaKeyID)
	if p.Policy, err = ParsePolicy(get(MetaDeletionPolicy, LegacyMetaDeletionPolicy)); err != nil {
		return p, err
	}
	if s := get(MetaDecryptSize); s != "" {
		if p.DecryptSize, err = strconv.ParseInt(s, 10, 64); err != nil || p.DecryptSize < 0 {
			return p, invalid("%s must be a size in bytes, got %q", MetaDecryptSize, s)
		}
	}
	return p, nil
}

// lifecycleKeys describe the source secret's own lifecycle: a clone has its
// own id and policy, so copying them would lie about the clone.
var lifecycleKeys = []string{MetaKeyID, MetaDeletionPolicy, LegacyMetaKeyID, LegacyMetaDeletionPolicy}

// CloneMetadata is the metadata a clone carries over from its source: all of
// it (format, decrypted size, the user's own keys) except the keys naming
// the source's id and deletion policy.
func CloneMetadata(src map[string]string) map[string]string {
	out := maps.Clone(src)
	for k := range out {
		for _, l := range lifecycleKeys {
			if strings.EqualFold(k, l) {
				delete(out, k)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// OrphanRule says when a secret nobody uses should be gone. Only a secret
// whose policy says go (on_last_consumer) can be an orphan: a retain
// secret, which every ordinary Barbican secret is, never is, whatever the
// rule, for a destroyed disk key is a lost disk.
type OrphanRule struct {
	// Grace spares on_last_consumer secrets younger than this: between
	// creating a secret and registering its consumer a caller needs a moment.
	Grace time.Duration
	// OlderThan, when longer than Grace, is the idle time that counts
	// instead (the REST API's older_than).
	OlderThan time.Duration
}

// MinIdle is how long a secret must have been left unchanged to count.
func (r OrphanRule) MinIdle() time.Duration { return max(r.Grace, r.OlderThan) }

// Orphan reports whether a secret with this policy and number of consumers,
// idle for this long (since it last changed, which includes losing its last
// consumer), should be gone, and why.
func (r OrphanRule) Orphan(p Policy, consumers int, idle time.Duration) (bool, string) {
	if consumers > 0 || p != OnLastConsumer || idle < r.MinIdle() {
		return false, ""
	}
	return true, "deletion policy on_last_consumer and no consumer for " + r.MinIdle().String()
}
