package kmip

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"slices"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"
)

// Streamed Encrypt and Decrypt over the wire, checked against Go's AES:
// each part answers what the mode allows (CBC whole blocks, CTR and GCM
// encryption at once), the Init part gives the server's IV and the
// Correlation Value, the final part GCM's tag; GCM decryption answers
// nothing before the tag verifies; a stream is its opener's only, and the
// decision is taken at the Init part.
func TestCipherStreaming(t *testing.T) {
	e := newEnv(t)
	for _, ver := range []version{{1, 4}, {2, 0}} {
		c := e.dial("cs")
		c.ver = ver
		key := bytes.Repeat([]byte{3}, 16)
		id := uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, kmip14.ObjectTypeSymmetricKey),
			attrs(c.ver, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskEncrypt|kmip14.CryptographicUsageMaskDecrypt,
				"Activation Date", time.Now().Add(-time.Minute)),
			st(kmip14.TagSymmetricKey, keyBlock(kmip14.KeyFormatTypeRaw, key,
				v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmAES), v(kmip14.TagCryptographicLength, 128)))}}).ok(0))
		block, _ := aes.NewCipher(key)
		msg := []byte("0123456789abcdef0123456789abcdef-and-a-tail")
		parts := [][]byte{msg[:8], msg[8:20], msg[20:40], msg[40:]}

		// CBC with PKCS#5: whole blocks as they come.
		cbc := params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeCBC), v(kmip14.TagPaddingMethod, kmip14.PaddingMethodPKCS5))
		ct, outs, _, _ := streamCrypt(t, c, kmip14.OperationEncrypt, id, cbc, parts, nil)
		iv := outs.iv
		padded := append(bytes.Clone(msg), bytes.Repeat([]byte{5}, 5)...)
		want := make([]byte, len(padded))
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(want, padded)
		if !bytes.Equal(ct, want) {
			t.Fatalf("%v CBC: server %x, Go %x", ver, ct, want)
		}
		if got := outs.sizes; !equalInts(got, []int{0, 16, 16, 16}) {
			t.Fatalf("%v CBC: part outputs %v, want whole blocks as they come", ver, got)
		}
		cbcIV := params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeCBC), v(kmip14.TagPaddingMethod, kmip14.PaddingMethodPKCS5))
		pt, outs, _, _ := streamCrypt(t, c, kmip14.OperationDecrypt, id, cbcIV, [][]byte{ct[:16], ct[16:32], ct[32:]}, iv)
		if !bytes.Equal(pt, msg) || !equalInts(outs.sizes, []int{0, 16, 27}) {
			t.Fatalf("%v CBC decrypt: %q in parts %v", ver, pt, outs.sizes)
		}

		// CTR: every byte at once.
		ctr := params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeCTR))
		ct, outs, _, _ = streamCrypt(t, c, kmip14.OperationEncrypt, id, ctr, parts, nil)
		want = make([]byte, len(msg))
		cipher.NewCTR(block, outs.iv).XORKeyStream(want, msg)
		if !bytes.Equal(ct, want) || !equalInts(outs.sizes, []int{8, 12, 20, 3}) {
			t.Fatalf("%v CTR: server %x in parts %v, Go %x", ver, ct, outs.sizes, want)
		}

		// GCM: ciphertext at once, the tag at the end; decryption waits for it.
		gcm := params(v(kmip14.TagBlockCipherMode, kmip14.BlockCipherModeGCM))
		ct, outs, tag, _ := streamCrypt(t, c, kmip14.OperationEncrypt, id, gcm, parts, nil)
		a, _ := cipher.NewGCM(block)
		sealed := a.Seal(nil, outs.iv, msg, nil)
		if !bytes.Equal(append(bytes.Clone(ct), tag...), sealed) || !equalInts(outs.sizes, []int{8, 12, 20, 3}) {
			t.Fatalf("%v GCM: server %x|%x, Go %x", ver, ct, tag, sealed)
		}
		pt, outs2, _, _ := streamCryptTag(t, c, kmip14.OperationDecrypt, id, gcm, [][]byte{ct[:10], ct[10:]}, outs.iv, tag)
		if !bytes.Equal(pt, msg) || !equalInts(outs2.sizes, []int{0, len(msg)}) {
			t.Fatalf("%v GCM decrypt: %q in parts %v", ver, pt, outs2.sizes)
		}
		bad := bytes.Clone(tag)
		bad[0] ^= 1
		_, _, _, final := streamCryptTag(t, c, kmip14.OperationDecrypt, id, gcm, [][]byte{ct[:10], ct[10:]}, outs.iv, bad)
		final.failed(0, uint32(kmip14.ResultReasonCryptographicFailure))

		// Opening is a use of the key: a role without secret:use is refused.
		obs := e.dial("cs", "audit")
		obs.ver = ver
		obs.do(byID(kmip14.OperationEncrypt, id, ctr, v(kmip14.TagData, msg), v(kmip14.TagInitIndicator, true))).
			failed(0, uint32(kmip14.ResultReasonPermissionDenied))
		// A stream is its opener's, for its operation only.
		r := c.do(byID(kmip14.OperationEncrypt, id, ctr, v(kmip14.TagData, msg[:4]), v(kmip14.TagInitIndicator, true))).ok(0)
		corr, _ := get(r, kmip14.TagCorrelationValue).([]byte)
		wrongCorr := reason(ver, kmip20.ResultReasonInvalidCorrelationValue)
		other := e.dial("cs-other")
		other.ver = ver
		other.do(op{op: kmip14.OperationEncrypt, payload: []ttlv.Value{v(kmip14.TagData, msg), v(kmip14.TagCorrelationValue, corr)}}).failed(0, wrongCorr)
		c.do(op{op: kmip14.OperationDecrypt, payload: []ttlv.Value{v(kmip14.TagData, msg), v(kmip14.TagCorrelationValue, corr)}}).failed(0, wrongCorr)
		other2 := uidOf(c.do(createAES(c.ver, 128)).ok(0))
		c.do(byID(kmip14.OperationEncrypt, other2, v(kmip14.TagData, msg), v(kmip14.TagCorrelationValue, corr))).failed(0, wrongCorr)
		// IV and additional data belong to the Init part.
		c.do(op{op: kmip14.OperationEncrypt, payload: []ttlv.Value{v(kmip14.TagData, msg), v(kmip14.TagIVCounterNonce, make([]byte, 16)),
			v(kmip14.TagCorrelationValue, corr)}}).failed(0, uint32(kmip14.ResultReasonInvalidField))
		// The decision is the Init part's: a revoked key's stream goes on
		// to its end, a new one is refused.
		c.do(revoke(id, kmip14.RevocationReasonCodeCessationOfOperation)).ok(0)
		c.do(op{op: kmip14.OperationEncrypt, payload: []ttlv.Value{v(kmip14.TagData, msg[4:]), v(kmip14.TagCorrelationValue, corr),
			v(kmip14.TagFinalIndicator, true)}}).ok(0)
		c.do(byID(kmip14.OperationEncrypt, id, ctr, v(kmip14.TagData, msg), v(kmip14.TagInitIndicator, true))).
			failed(0, reason(ver, kmip20.ResultReasonWrongKeyLifecycleState))
		// Over the bound a stream is refused and closed.
		if ver.v2() {
			k2 := uidOf(c.do(createAES(c.ver, 128, "Cryptographic Usage Mask", kmip14.CryptographicUsageMaskEncrypt)).ok(0))
			c.do(byID(kmip14.OperationActivate, k2)).ok(0)
			big := make([]byte, 600<<10)
			r := c.do(byID(kmip14.OperationEncrypt, k2, ctr, v(kmip14.TagData, big), v(kmip14.TagInitIndicator, true))).ok(0)
			corr := get(r, kmip14.TagCorrelationValue)
			next := op{op: kmip14.OperationEncrypt, payload: []ttlv.Value{v(kmip14.TagData, big), v(kmip14.TagCorrelationValue, corr)}}
			c.do(next).failed(0, uint32(kmip20.ResultReasonServerLimitExceeded))
			c.do(next).failed(0, uint32(kmip20.ResultReasonInvalidCorrelationValue))
		}
		// A part without a Correlation Value that is not the first.
		c.do(byID(kmip14.OperationEncrypt, id, ctr, v(kmip14.TagData, msg), v(kmip14.TagFinalIndicator, true))).
			failed(0, uint32(kmip14.ResultReasonMissingData))
	}
}

type partOutputs struct {
	iv    []byte // the server's, from the Init part
	sizes []int  // Data bytes answered per part
}

func streamCrypt(t *testing.T, c *client, o kmip14.Operation, id string, p ttlv.Value, parts [][]byte, iv []byte) ([]byte, partOutputs, []byte, *resp) {
	return streamCryptTag(t, c, o, id, p, parts, iv, nil)
}

// streamCryptTag sends parts as one stream (the IV, if any, and the
// parameters at the Init part, the tag at the final one) and gathers the
// answers. The final response is returned unchecked when tag is given.
func streamCryptTag(t *testing.T, c *client, o kmip14.Operation, id string, p ttlv.Value, parts [][]byte, iv, tag []byte) (out []byte, po partOutputs, gotTag []byte, final *resp) {
	t.Helper()
	var corr []byte
	for i, part := range parts {
		var payload []ttlv.Value
		if i == 0 {
			payload = append(payload, v(tagUniqueIdentifier, id), p, v(kmip14.TagData, part))
			if iv != nil {
				payload = append(payload, v(kmip14.TagIVCounterNonce, iv))
			}
			payload = append(payload, v(kmip14.TagInitIndicator, true))
		} else {
			payload = append(payload, v(kmip14.TagData, part), v(kmip14.TagCorrelationValue, corr))
		}
		last := i == len(parts)-1
		if last {
			if tag != nil {
				payload = append(payload, v(kmip14.TagAuthenticatedEncryptionTag, tag))
			}
			payload = append(payload, v(kmip14.TagFinalIndicator, true))
		}
		r := c.do(op{op: o, payload: payload})
		if last && tag != nil && get(r.item(0), kmip14.TagResultStatus) != ttlv.EnumValue(kmip14.ResultStatusSuccess) {
			return out, po, nil, r
		}
		x := r.ok(0)
		if uidOf(x) != id {
			t.Fatalf("part %d answers Unique Identifier %q", i, uidOf(x))
		}
		d, _ := get(x, kmip14.TagData).([]byte)
		out = append(out, d...)
		po.sizes = append(po.sizes, len(d))
		if i == 0 {
			corr, _ = get(x, kmip14.TagCorrelationValue).([]byte)
			po.iv, _ = get(x, kmip14.TagIVCounterNonce).([]byte)
			if po.iv == nil {
				po.iv = iv
			}
		}
		if c := get(x, kmip14.TagCorrelationValue); last == (c != nil) {
			t.Fatalf("part %d of %d: Correlation Value %v", i, len(parts), c)
		}
		gotTag, _ = get(x, kmip14.TagAuthenticatedEncryptionTag).([]byte)
		final = r
	}
	return out, po, gotTag, final
}

func equalInts(a, b []int) bool { return slices.Equal(a, b) }
