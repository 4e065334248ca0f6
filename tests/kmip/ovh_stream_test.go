package kmip_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"testing"

	ovh "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// TestOVHStreamedCrypt: ovh/kmip-go's Encrypt and Decrypt payloads with
// Init / Final Indicator and Correlation Value (KMIP 1.4 over its
// negotiation): CBC and GCM streams, each output checked with Go's AES,
// and GCM decryption answering only at the final part.
func TestOVHStreamedCrypt(t *testing.T) {
	s := startServer(t)
	dir := s.clientFiles(t, "ovhstream", "carol", "admin")
	c := ovhClient(t, s, dir)
	ctx := context.Background()
	key := bytes.Repeat([]byte{4}, 32)
	reg, err := c.Register().SymmetricKey(ovh.CryptographicAlgorithmAES, ovh.CryptographicUsageEncrypt|ovh.CryptographicUsageDecrypt, key).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := reg.UniqueIdentifier
	if _, err := c.Activate(id).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	msg := []byte("streamed through ovh/kmip-go, in three parts of odd sizes")
	parts := [][]byte{msg[:7], msg[7:30], msg[30:]}
	yes := true

	for _, mode := range []ovh.BlockCipherMode{ovh.BlockCipherModeCBC, ovh.BlockCipherModeGCM} {
		params := &ovh.CryptographicParameters{BlockCipherMode: mode, PaddingMethod: ovh.PaddingMethodPKCS5}
		if mode == ovh.BlockCipherModeGCM {
			params.PaddingMethod = 0
		}
		var ct, iv, corr, tag []byte
		for i, part := range parts {
			req := &payloads.EncryptRequestPayload{Data: part, CorrelationValue: corr}
			if i == 0 {
				req.UniqueIdentifier, req.CryptographicParameters, req.InitIndicator = id, params, &yes
			}
			if i == len(parts)-1 {
				req.FinalIndicator = &yes
			}
			out, err := c.Request(ctx, req)
			if err != nil {
				t.Fatalf("%v part %d: %v", mode, i, err)
			}
			r := out.(*payloads.EncryptResponsePayload)
			if mode == ovh.BlockCipherModeCBC && len(r.Data)%16 != 0 {
				t.Fatalf("CBC part %d answered %d bytes", i, len(r.Data))
			}
			ct = append(ct, r.Data...)
			if i == 0 {
				iv, corr = r.IVCounterNonce, r.CorrelationValue
			}
			tag = r.AuthenticatedEncryptionTag
		}
		switch mode {
		case ovh.BlockCipherModeCBC:
			pt := make([]byte, len(ct))
			cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
			if n := int(pt[len(pt)-1]); n < 1 || n > 16 || !bytes.Equal(pt[:len(pt)-n], msg) {
				t.Fatalf("CBC: Go decrypts the stream to %q", pt)
			}
		case ovh.BlockCipherModeGCM:
			a, _ := cipher.NewGCM(block)
			if pt, err := a.Open(nil, iv, append(bytes.Clone(ct), tag...), nil); err != nil || !bytes.Equal(pt, msg) {
				t.Fatalf("GCM: Go cannot open the stream: %v", err)
			}
		}
		// And back, in two parts.
		corr = nil
		var pt []byte
		for i, part := range [][]byte{ct[:16], ct[16:]} {
			req := &payloads.DecryptRequestPayload{Data: part, CorrelationValue: corr}
			if i == 0 {
				req.UniqueIdentifier, req.CryptographicParameters, req.IVCounterNonce, req.InitIndicator = id, params, iv, &yes
			} else {
				req.FinalIndicator, req.AuthenticatedEncryptionTag = &yes, tag
			}
			out, err := c.Request(ctx, req)
			if err != nil {
				t.Fatalf("%v decrypt part %d: %v", mode, i, err)
			}
			r := out.(*payloads.DecryptResponsePayload)
			if i == 0 {
				corr = r.CorrelationValue
				if mode == ovh.BlockCipherModeGCM && len(r.Data) != 0 {
					t.Fatal("GCM decryption answered plaintext before the tag")
				}
			}
			pt = append(pt, r.Data...)
		}
		if !bytes.Equal(pt, msg) {
			t.Fatalf("%v: streamed decryption gave %q", mode, pt)
		}
	}
}
