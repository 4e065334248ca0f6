package kmip

// The OASIS KMIP server profiles this server claims in Query Profiles.
// kmip/profiles_test.go holds, for each profile of issue 11, the
// operations and errors it requires, checks them against a running server
// and fails when a claimed profile falls short. A profile is listed here
// only once its test passes.

import (
	"slices"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// profile names a server profile by its KMIP 1.3 and 1.4 enumerations.
type profile struct {
	v13, v14 kmip14.ProfileName
}

// claimedProfiles are the profiles this server passes, every mandatory
// OASIS test case included (tests/kmip conformance_test.go). Not claimed:
// Baseline Server Basic (its Basic Authentication Suite is TLS 1.0 with RSA
// key transport; this server speaks TLS 1.2+ with forward secrecy);
// Baseline Server TLS v1.2 (test case TL-M-3: an all-attributes Get
// Attributes without Random Number Generator and Original Creation Date,
// which PyKMIP 0.10 cannot decode). The
// Suite B profiles are claimed only by a server running in their TLS mode
// (suiteBProfiles).
var claimedProfiles = []profile{
	{kmip14.ProfileNameSymmetricKeyLifecycleServerKMIPV1_3, kmip14.ProfileNameSymmetricKeyLifecycleServerKMIPV1_4},
	{kmip14.ProfileNameAsymmetricKeyLifecycleServerKMIPV1_3, kmip14.ProfileNameAsymmetricKeyLifecycleServerKMIPV1_4},
	{kmip14.ProfileNameBasicCryptographicServerKMIPV1_3, kmip14.ProfileNameBasicCryptographicServerKMIPV1_4},
	{kmip14.ProfileNameAdvancedCryptographicServerKMIPV1_3, kmip14.ProfileNameAdvancedCryptographicServerKMIPV1_4},
	{kmip14.ProfileNameRNGCryptographicServerKMIPV1_3, kmip14.ProfileNameRNGCryptographicServerKMIPV1_4},
	{kmip14.ProfileNameSymmetricKeyFoundryServerKMIPV1_3, kmip14.ProfileNameSymmetricKeyFoundryServerKMIPV1_4},
}

// suiteBProfiles is the Suite B server profile of each Suite B mode. A
// minLOS 192 server does not claim minLOS 128: it refuses the 128-bit suite
// and P-256, which a minLOS 128 server must take.
var suiteBProfiles = map[SuiteB]profile{
	SuiteB128: {kmip14.ProfileNameSuiteBMinLOS_128ServerKMIPV1_3, kmip14.ProfileNameSuiteBMinLOS_128ServerKMIPV1_4},
	SuiteB192: {kmip14.ProfileNameSuiteBMinLOS_192ServerKMIPV1_3, kmip14.ProfileNameSuiteBMinLOS_192ServerKMIPV1_4},
}

// writeProfiles answers Query Profiles: a Profile Information per claimed
// profile, named in the client's version (1.3 names at 1.3; 1.4 names from
// 1.4, with a 2.x Profile Version of 1.4, the profiles' document version).
func writeProfiles(c *opCtx) {
	w := c.w
	claimed := claimedProfiles
	if p, ok := suiteBProfiles[c.suiteB]; ok {
		claimed = append(slices.Clip(claimed), p)
	}
	for _, p := range claimed {
		name := p.v14
		if !c.ver.atLeast(1, 4) {
			name = p.v13
		}
		w.begin(kmip14.TagProfileInformation)
		w.enum(kmip14.TagProfileName, uint32(name))
		if c.ver.v2() {
			w.begin(kmip20.TagProfileVersion)
			w.integer(kmip20.TagProfileVersionMajor, 1)
			w.integer(kmip20.TagProfileVersionMinor, 4)
			w.end()
		}
		w.end()
	}
}

// writeCapabilities answers Query Capabilities. Streaming: Encrypt,
// Decrypt, Sign, Verify, MAC, MAC Verify and Hash stream. Batch Undo is not claimed: Undo is
// served only for batches that change nothing (batch_undo.go). The batch
// capabilities are 1.4 members.
func writeCapabilities(c *opCtx) {
	w := c.w
	w.begin(kmip14.TagCapabilityInformation)
	flag := func(tag ttlv.Tag, on bool) {
		var v uint64
		if on {
			v = 1
		}
		w.u64(tag, ttlv.TypeBoolean, v)
	}
	flag(kmip14.TagStreamingCapability, true)
	flag(kmip14.TagAsynchronousCapability, false)
	flag(kmip14.TagAttestationCapability, false)
	if c.ver.atLeast(1, 4) {
		flag(kmip14.TagBatchUndoCapability, false)
		flag(kmip14.TagBatchContinueCapability, true)
	}
	w.end()
}
