package kmip

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// A MAC and a Hash in three parts equal Go's over the whole data; a stream
// is its opener's only.
func TestStreaming(t *testing.T) {
	e := newEnv(t)
	c := e.dial("p1")
	c.ver = version{2, 0}
	key := bytes.Repeat([]byte{5}, 32)
	hk := uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, kmip14.ObjectTypeSymmetricKey),
		attrs(c.ver, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskMACGenerate),
		st(kmip14.TagSymmetricKey, keyBlock(kmip14.KeyFormatTypeRaw, key,
			v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmHMAC_SHA256), v(kmip14.TagCryptographicLength, 256)))}}).ok(0))
	c.do(byID(kmip14.OperationActivate, hk)).ok(0)
	parts := [][]byte{[]byte("first part, "), []byte("second part, "), []byte("last part")}
	whole := bytes.Join(parts, nil)

	r := c.do(byID(kmip14.OperationMAC, hk, v(kmip14.TagData, parts[0]), v(kmip14.TagInitIndicator, true))).ok(0)
	corr, _ := get(r, kmip14.TagCorrelationValue).([]byte)
	if len(corr) == 0 {
		t.Fatalf("no Correlation Value: %v", r)
	}
	// Another project cannot continue it, nor can a made-up value.
	e.dial("p2").do(op{op: kmip14.OperationMAC, payload: []ttlv.Value{v(kmip14.TagData, parts[1]), v(kmip14.TagCorrelationValue, corr)}}).
		failed(0, uint32(kmip14.ResultReasonInvalidField))
	c.do(op{op: kmip14.OperationMAC, payload: []ttlv.Value{v(kmip14.TagData, parts[1]), v(kmip14.TagCorrelationValue, []byte("nope"))}}).
		failed(0, uint32(kmip20.ResultReasonInvalidCorrelationValue))
	c.do(op{op: kmip14.OperationMAC, payload: []ttlv.Value{v(kmip14.TagData, parts[1]), v(kmip14.TagCorrelationValue, corr)}}).ok(0)
	r = c.do(op{op: kmip14.OperationMAC, payload: []ttlv.Value{v(kmip14.TagData, parts[2]), v(kmip14.TagCorrelationValue, corr),
		v(kmip14.TagFinalIndicator, true)}}).ok(0)
	m := hmac.New(sha256.New, key)
	m.Write(whole)
	if got, _ := get(r, kmip14.TagMACData).([]byte); !bytes.Equal(got, m.Sum(nil)) {
		t.Fatal("the streamed MAC differs from Go's over the whole data")
	}
	// The stream is closed.
	c.do(op{op: kmip14.OperationMAC, payload: []ttlv.Value{v(kmip14.TagData, parts[2]), v(kmip14.TagCorrelationValue, corr),
		v(kmip14.TagFinalIndicator, true)}}).failed(0, uint32(kmip20.ResultReasonInvalidCorrelationValue))

	sha := params(v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256))
	r = c.do(op{op: kmip14.OperationHash, payload: []ttlv.Value{sha, v(kmip14.TagData, parts[0]), v(kmip14.TagInitIndicator, true)}}).ok(0)
	corr, _ = get(r, kmip14.TagCorrelationValue).([]byte)
	c.do(op{op: kmip14.OperationHash, payload: []ttlv.Value{v(kmip14.TagData, parts[1]), v(kmip14.TagCorrelationValue, corr)}}).ok(0)
	r = c.do(op{op: kmip14.OperationHash, payload: []ttlv.Value{v(kmip14.TagData, parts[2]), v(kmip14.TagCorrelationValue, corr),
		v(kmip14.TagFinalIndicator, true)}}).ok(0)
	if want := sha256.Sum256(whole); !bytes.Equal(get(r, kmip14.TagData).([]byte), want[:]) {
		t.Fatal("the streamed Hash differs from Go's")
	}
	// Encrypt streams (cipherstream_test.go), decided at the Init part.
	c.do(byID(kmip14.OperationEncrypt, hk, gcmParams(), v(kmip14.TagData, parts[0]), v(kmip14.TagInitIndicator, true))).
		failed(0, uint32(kmip20.ResultReasonIncompatibleCryptographicUsageMask))
	c.do(op{op: kmip14.OperationHash, payload: []ttlv.Value{sha, v(kmip14.TagData, parts[0]), v(kmip14.TagFinalIndicator, true)}}).
		failed(0, uint32(kmip14.ResultReasonMissingData))
}
