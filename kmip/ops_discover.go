package kmip

import (
	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
)

// Vendor Identification in Query responses.
const vendorID = "Keywarden"

// opDiscoverVersions answers the versions both sides speak, the server's
// preference first; with an empty client list, all of the server's.
func opDiscoverVersions(c *opCtx, p item) *opError {
	var asked []version
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		if m.tag != kmip14.TagProtocolVersion {
			continue
		}
		var h header
		if perr := parseVersion(m, &h); perr != nil {
			return perr
		}
		asked = append(asked, h.ver)
	}
	for _, v := range served {
		ok := len(asked) == 0
		for _, a := range asked {
			ok = ok || a == v
		}
		if ok {
			c.w.begin(kmip14.TagProtocolVersion)
			c.w.integer(kmip14.TagProtocolVersionMajor, v.major)
			c.w.integer(kmip14.TagProtocolVersionMinor, v.minor)
			c.w.end()
		}
	}
	return nil
}

// queryFunctions: the first version that defines each Query Function.
var queryFunctions = map[uint32]version{
	uint32(kmip14.QueryFunctionQueryOperations): {1, 0}, uint32(kmip14.QueryFunctionQueryObjects): {1, 0},
	uint32(kmip14.QueryFunctionQueryServerInformation): {1, 0}, uint32(kmip14.QueryFunctionQueryApplicationNamespaces): {1, 0},
	uint32(kmip14.QueryFunctionQueryExtensionList): {1, 1}, uint32(kmip14.QueryFunctionQueryExtensionMap): {1, 1},
	uint32(kmip14.QueryFunctionQueryAttestationTypes): {1, 2}, uint32(kmip14.QueryFunctionQueryRNGs): {1, 3},
	uint32(kmip14.QueryFunctionQueryValidations): {1, 3}, uint32(kmip14.QueryFunctionQueryProfiles): {1, 3},
	uint32(kmip14.QueryFunctionQueryCapabilities): {1, 3}, uint32(kmip14.QueryFunctionQueryClientRegistrationMethods): {1, 3},
	13: {2, 0}, 14: {2, 0}, // Query Defaults Information, Query Storage Protection Masks
}

// opQuery answers the Query Functions the client's version defines, in the
// order the version lays out the response. Those with nothing to report
// here (application namespaces, extensions, attestation, validations,
// client registration, defaults, storage protection masks) answer nothing.
// A function the version does not define is an Invalid Field.
func opQuery(c *opCtx, p item) *opError {
	want := map[uint32]bool{}
	f := p.fields()
	for m, ok := f.next(); ok; m, ok = f.next() {
		if m.tag != kmip14.TagQueryFunction {
			continue
		}
		v, perr := m.enum()
		if perr != nil {
			return perr
		}
		if since, ok := queryFunctions[v]; !ok || !c.ver.atLeast(since.major, since.minor) {
			return invalidField("Query Function %s is not defined in KMIP %d.%d", kmip14.QueryFunction(v), c.ver.major, c.ver.minor)
		}
		want[v] = true
	}
	w := c.w
	if want[uint32(kmip14.QueryFunctionQueryOperations)] {
		for _, op := range supportedOps(c.ver) {
			w.enum(kmip14.TagOperation, op)
		}
	}
	if want[uint32(kmip14.QueryFunctionQueryObjects)] {
		for _, t := range []kmip14.ObjectType{
			kmip14.ObjectTypeSymmetricKey, kmip14.ObjectTypeSecretData, kmip14.ObjectTypeOpaqueObject,
			kmip14.ObjectTypeCertificate, kmip14.ObjectTypePublicKey, kmip14.ObjectTypePrivateKey,
		} {
			w.enum(kmip14.TagObjectType, uint32(t))
		}
	}
	if want[uint32(kmip14.QueryFunctionQueryServerInformation)] {
		w.text(kmip14.TagVendorIdentification, vendorID)
		w.begin(kmip14.TagServerInformation)
		if c.ver.v2() {
			w.text(kmip20.TagServerName, "keywarden")
			w.text(kmip20.TagProductName, "Keywarden key manager")
			w.text(kmip20.TagServerVersion, "1")
		}
		w.end()
	}
	if want[uint32(kmip14.QueryFunctionQueryRNGs)] {
		w.item(kmip14.TagRNGParameters, rngItem())
	}
	if want[uint32(kmip14.QueryFunctionQueryProfiles)] {
		writeProfiles(c)
	}
	if want[uint32(kmip14.QueryFunctionQueryCapabilities)] {
		writeCapabilities(c)
	}
	return nil
}
