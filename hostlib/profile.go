package hostlib

import (
	"fmt"

	"github.com/keywarden/keywarden/hostlib/cryptsetup"
)

// Profile is how hard new keyslots stretch their passphrase.
type Profile struct {
	Name string
	// PBKDF for cryptsetup keyslots.
	PBKDF cryptsetup.PBKDF
	// QemuIterTimeMS is qemu-img's PBKDF2 time target (0 = QEMU's 2 s).
	QemuIterTimeMS int
	// CryptsetupImages creates raw LUKS images with cryptsetup, skipping
	// QEMU's PBKDF benchmark (~2 s whatever the target).
	CryptsetupImages bool
}

// Profile names accepted by ParseProfile.
const (
	ProfileAuto    = "auto"
	ProfileFast    = "fast"
	ProfileDefault = "default"
)

var (
	// FastProfile: PBKDF2-SHA256, 1000 iterations. For keys of 128 bits or
	// more from a CSPRNG, guessing is hopeless with or without stretching,
	// so stretching only costs seconds on every format and unlock.
	FastProfile = Profile{Name: ProfileFast, PBKDF: cryptsetup.FastPBKDF, QemuIterTimeMS: 10, CryptsetupImages: true}
	// DefaultProfile keeps cryptsetup's and QEMU's benchmarked defaults,
	// which protect passphrases a person chose.
	DefaultProfile = Profile{Name: ProfileDefault}
)

// minFastKeyBytes is the least random material that may skip stretching.
const minFastKeyBytes = 16

// ProfileFor picks the profile a secret deserves: fast for symmetric and
// opaque keys of at least 128 bits, default for passphrase secrets, whose
// entropy the host cannot know.
func ProfileFor(s *Secret) Profile {
	if (s.Type == TypeSymmetric || s.Type == TypeOpaque) && s.Len() >= minFastKeyBytes {
		return FastProfile
	}
	return DefaultProfile
}

// ParseProfile resolves auto, fast or default for a secret.
func ParseProfile(name string, s *Secret) (Profile, error) {
	switch name {
	case "", ProfileAuto:
		return ProfileFor(s), nil
	case ProfileFast:
		return FastProfile, nil
	case ProfileDefault:
		return DefaultProfile, nil
	}
	return Profile{}, fmt.Errorf("unknown profile %q (want auto, fast or default)", name)
}
