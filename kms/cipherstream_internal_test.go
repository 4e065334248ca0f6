package kms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"testing"
)

// A stream cut anywhere gives what one request gives (which Go's crypto
// checks in cipher tests): CBC answers whole blocks only, decryption
// holds the padding block back, GCM decryption answers nothing before the
// tag, and a wrong tag or padding is refused.
func TestCipherStreamSplits(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	sec := &Secret{ID: "k", Type: Symmetric, Algorithm: "aes"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mode := range []struct{ mode, padding string }{{"gcm", ""}, {"cbc", "pkcs5"}, {"cbc", "none"}, {"ctr", ""}, {"ecb", "pkcs5"}, {"ecb", "none"}} {
		for n := range 70 {
			msg := make([]byte, n)
			for i := range msg {
				msg[i] = byte(rng.IntN(256))
			}
			if mode.padding == "none" {
				msg = msg[:n/16*16]
			}
			iv := bytes.Repeat([]byte{9}, 16)
			if mode.mode == "gcm" {
				iv = iv[:12]
			}
			p := CryptoParams{Mode: mode.mode, Padding: mode.padding, IV: iv, AAD: []byte("aad")}
			one, err := symmetric(sec, key, p, msg, true)
			if err != nil {
				t.Fatal(err)
			}
			got, tag := runStream(t, sec, key, p, msg, true, rng)
			if !bytes.Equal(got, one.Data) || !bytes.Equal(tag, one.Tag) {
				t.Fatalf("%s/%s %d bytes: the stream's ciphertext differs from one request's", mode.mode, mode.padding, n)
			}
			p.Tag = one.Tag
			back, _ := runStream(t, sec, key, p, one.Data, false, rng)
			if !bytes.Equal(back, msg) {
				t.Fatalf("%s/%s %d bytes: the stream does not decrypt its ciphertext", mode.mode, mode.padding, n)
			}
		}
	}
	// GCM with a wrong tag: nothing released, CryptoFailure.
	p := CryptoParams{Mode: "gcm", IV: make([]byte, 12)}
	one, _ := symmetric(sec, key, p, []byte("secret plaintext"), true)
	one.Tag[0] ^= 1
	cs, _, err := newCipherStream(sec, key, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := cs.Update(one.Data[:5]); len(out) != 0 {
		t.Fatal("GCM decryption released plaintext before the tag")
	}
	if _, err := cs.Final(one.Data[5:], one.Tag); KindOf(err) != KindCryptoFailure {
		t.Fatalf("a wrong GCM tag: %v", err)
	}
	// CBC with bad padding.
	p = CryptoParams{Mode: "cbc", IV: make([]byte, 16)}
	blk, _ := aes.NewCipher(key)
	ct := make([]byte, 32)
	cipher.NewCBCEncrypter(blk, p.IV).CryptBlocks(ct, bytes.Repeat([]byte{0x20}, 32))
	cs, _, _ = newCipherStream(sec, key, p, false)
	if _, err := cs.Final(ct, nil); KindOf(err) != KindCryptoFailure {
		t.Fatalf("bad CBC padding: %v", err)
	}
	// A GCM IV other than 12 bytes (CS-BC-M-GCM-3 streams with 8): the
	// stream's ciphertext and truncated tag are Go's GCM's, and it
	// decrypts back.
	for _, n := range []int{8, 16, 60} {
		msg := bytes.Repeat([]byte("part"), 100)
		p := CryptoParams{Mode: "gcm", IV: bytes.Repeat([]byte{byte(n)}, n), AAD: []byte("aad"), TagLen: 13}
		a, _ := cipher.NewGCMWithNonceSize(blk, n)
		want := a.Seal(nil, p.IV, msg, p.AAD)
		out, tag := runStream(t, sec, key, p, msg, true, rng)
		if !bytes.Equal(out, want[:len(msg)]) || !bytes.Equal(tag, want[len(msg):][:13]) {
			t.Fatalf("a %d-byte GCM IV: the stream is not GCM", n)
		}
		p.Tag = tag
		if back, _ := runStream(t, sec, key, p, out, false, rng); !bytes.Equal(back, msg) {
			t.Fatalf("a %d-byte GCM IV: no round trip", n)
		}
		p.Tag = append([]byte{tag[0] ^ 1}, tag[1:]...)
		cs, _, _ := newCipherStream(sec, key, p, false)
		if _, err := cs.Final(out, p.Tag); KindOf(err) != KindCryptoFailure {
			t.Fatalf("a %d-byte GCM IV, wrong tag: %v", n, err)
		}
	}
}

// runStream feeds data in random parts and checks each part's output.
func runStream(t *testing.T, sec *Secret, key []byte, p CryptoParams, data []byte, encrypt bool, rng *rand.Rand) (out, tag []byte) {
	t.Helper()
	cs, _, err := newCipherStream(sec, key, p, encrypt)
	if err != nil {
		t.Fatal(err)
	}
	rest := data
	for len(rest) > 0 && rng.IntN(4) > 0 {
		k := rng.IntN(len(rest) + 1)
		part, err := cs.Update(rest[:k])
		if err != nil {
			t.Fatal(err)
		}
		if (cs.mode == "cbc" || cs.mode == "ecb") && len(part)%16 != 0 {
			t.Fatalf("CBC answered %d bytes: not whole blocks", len(part))
		}
		if cs.mode == "gcm" && !encrypt && len(part) > 0 {
			t.Fatal("GCM decryption released plaintext before the tag")
		}
		out = append(out, part...)
		rest = rest[k:]
	}
	res, err := cs.Final(rest, p.Tag)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, res.Data...), res.Tag
}
