package kmip

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// Fuzzing (bounded, as CI runs it):
//
//	go test ./kmip -run '^$' -fuzz '^FuzzDecode$'   -fuzztime 30s
//	go test ./kmip -run '^$' -fuzz '^FuzzDispatch$' -fuzztime 30s
//
// Seed corpora live in testdata/fuzz/<target>/; KMIP_WRITE_SEEDS=1 go test
// -run TestWriteFuzzSeeds ./kmip regenerates them from fuzzSeeds.

// fuzzSeeds are requests of every served operation and version, plus the
// malformed shapes the bad-input tests use.
func fuzzSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, ver := range []version{{1, 0}, {1, 2}, {1, 4}, {2, 0}, {2, 1}} {
		id := "4f6b4ee0-5ba1-4b32-9bd4-6f1e1b1f0a01"
		ops := []op{
			{op: kmip14.OperationDiscoverVersions},
			{op: kmip14.OperationQuery, payload: []ttlv.Value{v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryOperations),
				v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryServerInformation)}},
			createAES(ver, 256, "Name", nameVal("seed"), "Object Group", "g", "x-seed", "s"),
			registerSecret(ver, []byte("pw"), "Name", nameVal("pw")),
			byID(kmip14.OperationGet, id),
			byID(kmip14.OperationGet, id, v(kmip14.TagKeyFormatType, kmip14.KeyFormatTypeTransparentSymmetricKey)),
			byID(kmip14.OperationGetAttributes, id),
			byID(kmip14.OperationGetAttributeList, id),
			byID(kmip14.OperationActivate, id),
			revoke(id, kmip14.RevocationReasonCodeKeyCompromise),
			byID(kmip14.OperationDestroy, id),
			byID(kmip14.OperationCheck, id, v(kmip14.TagCryptographicUsageMask, 4)),
			{op: kmip14.OperationLocate, payload: []ttlv.Value{v(kmip14.TagMaximumItems, 3), attr1OrAttrs(ver, "Name", nameVal("seed"))}},
		}
		if ver.v2() {
			ops = append(ops,
				byID(kmip14.Operation(kmip20.OperationSetAttribute), id, st(kmip20.TagNewAttribute, v(kmip14.TagObjectGroup, "g2"))),
				byID(kmip14.OperationModifyAttribute, id, st(kmip20.TagCurrentAttribute, v(kmip14.TagObjectGroup, "g")),
					st(kmip20.TagNewAttribute, v(kmip14.TagObjectGroup, "g3"))),
				byID(kmip14.OperationDeleteAttribute, id, v(tagAttributeRef, ttlv.EnumValue(kmip14.TagObjectGroup))))
		} else {
			ops = append(ops,
				byID(kmip14.OperationAddAttribute, id, attr1("x-a", "1")),
				byID(kmip14.OperationModifyAttribute, id, attr1("Object Group", "g4")),
				byID(kmip14.OperationDeleteAttribute, id, v(tagAttributeName, "x-a")))
		}
		if ver.atLeast(1, 2) {
			ops = append(ops, cryptoSeeds(id)...)
		}
		for _, o := range ops {
			out = append(out, requestMsg(t, ver, nil, o))
		}
		// Create Key Pair, Activate the private key and Sign with it.
		out = append(out, requestMsg(t, ver, nil, ecPair(ver), byID(kmip14.OperationActivate, ""),
			byID(kmip14.OperationSign, "", v(kmip14.TagData, []byte("m")))))
		// Locate with the version-bound members, Query's later functions,
		// and an Undo batch of reads whose second item fails.
		out = append(out, requestMsg(t, ver, nil, op{op: kmip14.OperationLocate, payload: []ttlv.Value{
			v(kmip14.TagOffsetItems, 1), v(kmip14.TagStorageStatusMask, 5),
			v(kmip14.TagObjectGroupMember, kmip14.ObjectGroupMemberGroupMemberDefault), attr1OrAttrs(ver, "Object Group", "g"),
			attr1OrAttrs(ver, "Digest", st(kmip14.TagDigest, v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256),
				v(kmip14.TagDigestValue, []byte{1})))}}))
		out = append(out, requestMsg(t, ver, nil, op{op: kmip14.OperationQuery, payload: []ttlv.Value{
			v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryProfiles), v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryCapabilities),
			v(kmip14.TagQueryFunction, kmip14.QueryFunctionQueryRNGs)}}))
		out = append(out, requestMsg(t, ver, []ttlv.Value{v(kmip14.TagBatchErrorContinuationOption, kmip14.BatchErrorContinuationOptionUndo)},
			byID(kmip14.OperationGetAttributes, id), byID(kmip14.OperationGet, id), byID(kmip14.OperationLocate, "")))
		// A batch: Create, Activate and Get through the ID Placeholder.
		out = append(out, requestMsg(t, ver, []ttlv.Value{v(kmip14.TagBatchErrorContinuationOption, kmip14.BatchErrorContinuationOptionContinue)},
			createAES(ver, 128), byID(kmip14.OperationActivate, ""), byID(kmip14.OperationGet, "")))
	}
	valid := requestMsg(t, version{1, 4}, []ttlv.Value{v(kmip14.TagMaximumResponseSize, 4096), v(kmip14.TagClientCorrelationValue, "c")},
		op{op: kmip14.OperationDiscoverVersions})
	inner := bytes.Clone(valid)
	binary.BigEndian.PutUint32(inner[12:], 0x1000)
	out = append(out,
		valid[:len(valid)-16], inner,
		requestMsg(t, version{3, 0}, nil, op{op: kmip14.OperationDiscoverVersions}),
		requestMsg(t, version{1, 4}, nil, op{op: kmip14.OperationEncrypt}),
		requestMsg(t, version{1, 4}, []ttlv.Value{v(ttlv.Tag(0x42ff01), 1)}, op{op: kmip14.OperationDiscoverVersions}),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		frameHeader(tagRequestMessage, ttlv.TypeStructure, 0xFFFFFFF8),
	)
	return out
}

// cryptoSeeds are the cryptographic services' requests (KMIP 1.2 on).
func cryptoSeeds(id string) []op {
	data := v(kmip14.TagData, []byte("data"))
	return []op{
		byID(kmip14.OperationEncrypt, id, gcmParams(), data, v(kmip14.TagAuthenticatedEncryptionAdditionalData, []byte("a"))),
		byID(kmip14.OperationDecrypt, id, params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeCBC),
			v(kmip14.TagPaddingMethod, kmip14.PaddingMethodPKCS5)), data, v(kmip14.TagIVCounterNonce, make([]byte, 16))),
		byID(kmip14.OperationSign, id, params(v(kmip14.TagDigitalSignatureAlgorithm, kmip14.DigitalSignatureAlgorithmECDSAWithSHA256)), data),
		byID(kmip14.OperationSignatureVerify, id, data, v(kmip14.TagSignatureData, []byte("sig"))),
		byID(kmip14.OperationMAC, id, params(v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmHMAC_SHA256)), data),
		byID(kmip14.OperationMACVerify, id, data, v(kmip14.TagMACData, []byte("mac"))),
		{op: kmip14.OperationHash, payload: []ttlv.Value{params(v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256)), data}},
		{op: kmip14.OperationRNGRetrieve, payload: []ttlv.Value{v(kmip14.TagDataLength, 16)}},
		{op: kmip14.OperationRNGSeed, payload: []ttlv.Value{data}},
		byID(kmip14.OperationMAC, id, data, v(kmip14.TagInitIndicator, true)),
		{op: kmip14.OperationHash, payload: []ttlv.Value{data, v(kmip14.TagCorrelationValue, []byte("c")), v(kmip14.TagFinalIndicator, true)}},
	}
}

// ecPair is a Create Key Pair of an EC P-256 pair in the version's shape.
func ecPair(ver version) op {
	common, priv, pub := kmip14.TagCommonTemplateAttribute, kmip14.TagPrivateKeyTemplateAttribute, kmip14.TagPublicKeyTemplateAttribute
	if ver.v2() {
		common, priv, pub = kmip20.TagCommonAttributes, kmip20.TagPrivateKeyAttributes, kmip20.TagPublicKeyAttributes
	}
	return op{op: kmip14.OperationCreateKeyPair, payload: []ttlv.Value{
		wrapTag(common, attrs(ver, "Cryptographic Algorithm", kmip14.CryptographicAlgorithmEC, "Cryptographic Length", 256)),
		wrapTag(priv, attrs(ver, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskSign)),
		wrapTag(pub, attrs(ver, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskVerify))}}
}

// walk visits every item of checked bytes with every accessor: none may
// panic, whatever the item's type.
func walk(b []byte, depth int) {
	for len(b) > 0 {
		it, rest, err := split(b)
		if err != nil {
			return
		}
		it.text()
		it.bytes()
		it.integer()
		it.enum()
		it.long()
		it.boolean()
		it.datetime()
		if it.typ != ttlv.TypeStructure || check(it.val, depth+1) == nil {
			if s := encodeValue(it); s != "" {
				back, ok := decodeValue(s)
				if !ok || back.typ != it.typ || !bytes.Equal(back.val, it.val) {
					panic(fmt.Sprintf("stored value %q does not round-trip", s))
				}
			}
		}
		if it.typ == ttlv.TypeStructure {
			walk(it.val, depth+1)
			readAttributes(it)
			readTemplate(it)
			readAttribute(it)
			readReference(it)
			nameValue(it)
			locateQuery([]attr{{name: attrName, val: it}, {name: attrState, val: it}, {name: "x-f", val: it}})
		}
		b = rest
	}
}

// FuzzDecode: the layout check, the walkers and the request parser never
// panic, and what the check accepts gemalto's decoder accepts too.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if check(b, 0) == nil {
			for rest := b; len(rest) > 0; {
				if err := ttlv.TTLV(rest).Valid(); err != nil {
					t.Fatalf("accepted bytes gemalto rejects: %v", err)
				}
				_, next, _ := split(rest)
				rest = next
			}
			walk(b, 0)
			unknownTag(b)
		}
		h, items, perr := parseRequest(b, 0)
		if perr == nil && (len(items) == 0 || int(h.batchCount) != len(items) || !h.hasVersion) {
			t.Fatalf("parsed an invalid request: %+v, %d items", h, len(items))
		}
		for _, it := range items {
			if it.err == nil && (!it.hasOp || !it.hasPay) {
				t.Fatal("a batch item without operation or payload passed")
			}
		}
		var w writer
		var r response
		r.start(&w, h.ver.fallback(), time.Unix(0, 0), h.clientCorr, 0)
		if perr != nil {
			r.failItem(false, 0, nil, false, perr)
		}
		if err := check(r.finish(), 0); err != nil {
			t.Fatalf("wrote bad TTLV: %v", err)
		}
	})
}

// FuzzDispatch: whole messages through the dispatcher, on a real service:
// every input gets a well-formed Response Message, and no panic.
func FuzzDispatch(f *testing.F) {
	svc := newService(f)
	ids, err := NewIdentities(sharedCA(f).Certificate(), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(Config{Service: svc, Certificate: serverCert(f), Identities: ids})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		resp := srv.Handle(ctx, who("fuzz"), b)
		if err := check(resp, 0); err != nil {
			t.Fatalf("response is not TTLV: %v", err)
		}
		if err := ttlv.TTLV(resp).Valid(); err != nil {
			t.Fatalf("gemalto rejects the response: %v", err)
		}
		top, rest, _ := split(resp)
		if top.tag != tagResponseMessage || len(rest) != 0 {
			t.Fatalf("not a Response Message: %x", resp)
		}
		fl := top.fields()
		h, ok := fl.next()
		if !ok || h.tag != tagResponseHeader {
			t.Fatal("no Response Header")
		}
		count, _ := h.find(kmip14.TagBatchCount)
		n, _ := count.integer()
		items := 0
		for it, ok := fl.next(); ok; it, ok = fl.next() {
			if it.tag != tagBatchItem {
				t.Fatalf("unexpected %v", it.tag)
			}
			if _, ok := it.find(kmip14.TagResultStatus); !ok {
				t.Fatal("a batch item without Result Status")
			}
			items++
		}
		if items == 0 || int(n) != items {
			t.Fatalf("Batch Count %d, %d items", n, items)
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz (KMIP_WRITE_SEEDS=1).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KMIP_WRITE_SEEDS") == "" {
		t.Skip("set KMIP_WRITE_SEEDS=1 to regenerate testdata/fuzz")
	}
	for _, target := range []string{"FuzzDecode", "FuzzDispatch"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range fuzzSeeds(t) {
			sum := sha256.Sum256(s)
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, "seed-"+hex.EncodeToString(sum[:8])), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
