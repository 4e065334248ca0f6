package kmip

import (
	"fmt"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// TestQueryVersions: each Query Function from the version that defines
// it, and each answer with the members its version defines.
func TestQueryVersions(t *testing.T) {
	e := newEnv(t)
	c := e.dial("query")
	query := func(fns ...kmip14.QueryFunction) *resp {
		var p []ttlv.Value
		for _, f := range fns {
			p = append(p, v(kmip14.TagQueryFunction, f))
		}
		return c.do(op{op: kmip14.OperationQuery, payload: p})
	}
	for _, ver := range served {
		t.Run(fmt.Sprintf("%d.%d", ver.major, ver.minor), func(t *testing.T) {
			c.ver = ver
			if !ver.atLeast(1, 3) {
				for _, f := range []kmip14.QueryFunction{kmip14.QueryFunctionQueryProfiles, kmip14.QueryFunctionQueryCapabilities,
					kmip14.QueryFunctionQueryRNGs} {
					query(f).failed(0, uint32(kmip14.ResultReasonInvalidField))
				}
				if !ver.atLeast(1, 1) {
					query(kmip14.QueryFunctionQueryExtensionList).failed(0, uint32(kmip14.ResultReasonInvalidField))
				}
				return
			}
			q := query(kmip14.QueryFunctionQueryProfiles, kmip14.QueryFunctionQueryCapabilities, kmip14.QueryFunctionQueryRNGs,
				kmip14.QueryFunctionQueryValidations).ok(0)
			profiles := all(q, kmip14.TagProfileInformation)
			if len(profiles) != len(claimedProfiles) {
				t.Fatalf("%d profiles, want %d", len(profiles), len(claimedProfiles))
			}
			want := claimedProfiles[0].v14
			if !ver.atLeast(1, 4) {
				want = claimedProfiles[0].v13
			}
			if get(profiles[0], kmip14.TagProfileName) != ttlv.EnumValue(want) ||
				(get(profiles[0], kmip20.TagProfileVersion) != nil) != ver.v2() {
				t.Fatalf("profile information %v", profiles[0])
			}
			caps := all(q, kmip14.TagCapabilityInformation)
			if len(caps) != 1 || get(caps[0], kmip14.TagStreamingCapability) != true ||
				(get(caps[0], kmip14.TagBatchUndoCapability) != nil) != ver.atLeast(1, 4) {
				t.Fatalf("capabilities %v", caps)
			}
			if get(q, kmip14.TagRNGParameters, kmip14.TagRNGAlgorithm) != ttlv.EnumValue(kmip14.RNGAlgorithmDRBG) {
				t.Fatalf("RNGs %v", q)
			}
			if ver.v2() {
				query(13).ok(0) // Query Defaults Information: nothing to report
			} else {
				query(13).failed(0, uint32(kmip14.ResultReasonInvalidField))
			}
		})
	}
}
