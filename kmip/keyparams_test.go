package kmip

import (
	"bytes"
	gocrypto "crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"
)

// oasisCase reads an OASIS KMIP 1.4 test case shipped with
// github.com/ovh/kmip-go and returns the ByteString values of tag, in order.
func oasisCase(t *testing.T, name, tag string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, v := range oasisValues(t, name, tag, "ByteString") {
		x, err := hex.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

// oasisValues returns the values of the items tag of type typ in case name.
func oasisValues(t *testing.T, name, tag, typ string) []string {
	t.Helper()
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/ovh/kmip-go").Output()
	if err != nil {
		t.Fatalf("locating github.com/ovh/kmip-go: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "kmiptest/testdata/v1.4", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`<`+tag+` type="`+typ+`" value="([^"]*)"`).FindAllSubmatch(b, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

var oasisHashes = map[string]kmip14.HashingAlgorithm{"SHA_1": kmip14.HashingAlgorithmSHA_1, "SHA_256": kmip14.HashingAlgorithmSHA_256,
	"SHA_384": kmip14.HashingAlgorithmSHA_384, "SHA_512": kmip14.HashingAlgorithmSHA_512}

// CS-AC-M-OAEP-1..10-14: each key registered with the case's
// Cryptographic Parameters (OAEP, its hash, MGF1 hash and P Source), the
// request with none. A private key decrypts the case's ciphertext to its
// plaintext; a public key's ciphertext opens with Go under the case's
// parameters and the private key of the next case.
func TestOASISOAEPCases(t *testing.T) {
	c := newEnv(t).dial("oaep")
	c.ver = version{1, 4}
	if missing := oaepCases(t, c); len(missing) > 0 {
		t.Fatal(missing)
	}
}

// oaepCases runs the cases and names those that fail.
func oaepCases(t *testing.T, c *client) (missing []string) {
	for n := 1; n <= 10; n++ {
		name := fmt.Sprintf("CS-AC-M-OAEP-%d-14.xml", n)
		material := oasisCase(t, name, "KeyMaterial")[0]
		data := oasisCase(t, name, "Data")
		hashes := oasisValues(t, name, "HashingAlgorithm", "Enumeration")
		mgf := oasisValues(t, name, "MaskGeneratorHashingAlgorithm", "Enumeration")
		label := oasisCase(t, name, "PSource")
		if len(hashes) == 0 || len(mgf) == 0 || len(data) != 2 {
			t.Fatalf("%s: cannot read the case", name)
		}
		fields := []ttlv.Value{v(kmip14.TagPaddingMethod, kmip14.PaddingMethodOAEP), v(kmip14.TagHashingAlgorithm, oasisHashes[hashes[0]]),
			v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmRSA), v(kmip14.TagMaskGenerator, kmip14.MaskGeneratorMGF1),
			v(kmip14.TagMaskGeneratorHashingAlgorithm, oasisHashes[mgf[0]])}
		var lbl []byte
		if len(label) > 0 {
			lbl = label[0]
			fields = append(fields, v(kmip14.TagPSource, lbl))
		}
		typ, tag, format, mask, o := kmip14.ObjectTypePublicKey, kmip14.TagPublicKey, kmip14.KeyFormatTypeX_509, kmip14.CryptographicUsageMaskEncrypt, kmip14.OperationEncrypt
		if n%2 == 0 {
			typ, tag, format, mask, o = kmip14.ObjectTypePrivateKey, kmip14.TagPrivateKey, kmip14.KeyFormatTypePKCS_1, kmip14.CryptographicUsageMaskDecrypt, kmip14.OperationDecrypt
		}
		id := uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, typ),
			attrs(c.ver, "Cryptographic Usage Mask", mask, "Cryptographic Parameters", params(fields...), "Activation Date", time.Now().Add(-time.Hour)),
			st(tag, keyBlock(format, material, v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmRSA), v(kmip14.TagCryptographicLength, 2048)))}}).ok(0))
		r := c.do(byID(o, id, v(kmip14.TagData, data[0])))
		got, _ := get(r.item(0), kmip14.TagResponsePayload, kmip14.TagData).([]byte)
		if o == kmip14.OperationDecrypt {
			if !bytes.Equal(got, data[1]) {
				missing = append(missing, fmt.Sprintf("%s: the server decrypts to %x, the case says %x (%v)", name, got, data[1], r.item(0)))
			}
			continue
		}
		next := fmt.Sprintf("CS-AC-M-OAEP-%d-14.xml", n+1)
		rk, err := x509.ParsePKCS1PrivateKey(oasisCase(t, next, "KeyMaterial")[0])
		if err != nil {
			t.Fatal(err)
		}
		pt, err := rk.Decrypt(nil, got, &rsa.OAEPOptions{Hash: goHash[hashes[0]], MGFHash: goHash[mgf[0]], Label: lbl})
		if err != nil || !bytes.Equal(pt, data[0]) {
			missing = append(missing, fmt.Sprintf("%s: Go cannot open the server's ciphertext with %s's key: %v (%v)", name, next, err, r.item(0)))
		}
	}
	return missing
}

var goHash = map[string]gocrypto.Hash{"SHA_1": gocrypto.SHA1, "SHA_256": gocrypto.SHA256, "SHA_384": gocrypto.SHA384, "SHA_512": gocrypto.SHA512}

// A request that leaves Cryptographic Parameters out gets the key's own
// (KMIP 1.4 §4.29-4.34): CS-AC-M-OAEP-10-14's Decrypt (OAEP SHA-384, MGF1
// SHA-256, a P Source label, all from the key) gives the case's plaintext;
// an Encrypt by the same rule decrypts with Go's RSA; a PSS key signs with
// its own hash and salt length (CS-AC-M-1-14), checked by Go; a MAC takes
// the key's HMAC algorithm (CS-AC-M-4-14); the request's own fields win.
func TestKeyCryptographicParameters(t *testing.T) {
	e := newEnv(t)
	c := e.dial("keyparams")
	c.ver = version{1, 4}
	vals := oasisCase(t, "CS-AC-M-OAEP-10-14.xml", "KeyMaterial")
	data := oasisCase(t, "CS-AC-M-OAEP-10-14.xml", "Data")
	label := oasisCase(t, "CS-AC-M-OAEP-10-14.xml", "PSource")
	if len(vals) != 1 || len(data) != 2 || len(label) != 1 {
		t.Fatalf("CS-AC-M-OAEP-10-14: %d keys, %d data, %d labels", len(vals), len(data), len(label))
	}
	oaep := params(v(kmip14.TagPaddingMethod, kmip14.PaddingMethodOAEP), v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_384),
		v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmRSA), v(kmip14.TagMaskGenerator, kmip14.MaskGeneratorMGF1),
		v(kmip14.TagMaskGeneratorHashingAlgorithm, kmip14.HashingAlgorithmSHA_256), v(kmip14.TagPSource, label[0]))
	register := func(typ kmip14.ObjectType, format kmip14.KeyFormatType, material []byte, mask kmip14.CryptographicUsageMask, p ttlv.Value, alg kmip14.CryptographicAlgorithm, bits int) string {
		objTag := map[kmip14.ObjectType]ttlv.Tag{kmip14.ObjectTypePrivateKey: kmip14.TagPrivateKey,
			kmip14.ObjectTypePublicKey: kmip14.TagPublicKey, kmip14.ObjectTypeSymmetricKey: kmip14.TagSymmetricKey}[typ]
		return uidOf(c.do(op{op: kmip14.OperationRegister, payload: []ttlv.Value{v(tagObjectType, typ),
			attrs(c.ver, "Cryptographic Usage Mask", mask, "Cryptographic Parameters", p, "Activation Date", time.Now().Add(-time.Minute)),
			st(objTag, keyBlock(format, material, v(kmip14.TagCryptographicAlgorithm, alg), v(kmip14.TagCryptographicLength, bits)))}}).ok(0))
	}
	priv := register(kmip14.ObjectTypePrivateKey, kmip14.KeyFormatTypePKCS_1, vals[0], kmip14.CryptographicUsageMaskDecrypt, oaep,
		kmip14.CryptographicAlgorithmRSA, 2048)
	got := get(c.do(byID(kmip14.OperationDecrypt, priv, v(kmip14.TagData, data[0]))).ok(0), kmip14.TagData)
	if !bytes.Equal(got.([]byte), data[1]) {
		t.Fatalf("OAEP-10: server %x, the case %x", got, data[1])
	}
	// The request's own fields win over the key's: SHA-256 alone breaks it.
	c.do(byID(kmip14.OperationDecrypt, priv, params(v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256)),
		v(kmip14.TagData, data[0]))).failed(0, uint32(kmip14.ResultReasonCryptographicFailure))

	rk, err := x509.ParsePKCS1PrivateKey(vals[0])
	if err != nil {
		t.Fatal(err)
	}
	pubDER := x509.MarshalPKCS1PublicKey(&rk.PublicKey)
	pub := register(kmip14.ObjectTypePublicKey, kmip14.KeyFormatTypePKCS_1, pubDER, kmip14.CryptographicUsageMaskEncrypt, oaep,
		kmip14.CryptographicAlgorithmRSA, 2048)
	ct := get(c.do(byID(kmip14.OperationEncrypt, pub, v(kmip14.TagData, []byte("by the key's rules")))).ok(0), kmip14.TagData)
	pt, err := rk.Decrypt(nil, ct.([]byte), &rsa.OAEPOptions{Hash: gocrypto.SHA384, MGFHash: gocrypto.SHA256, Label: label[0]})
	if err != nil || string(pt) != "by the key's rules" {
		t.Fatalf("Go cannot decrypt the server's OAEP with the key's parameters: %v", err)
	}

	pss := params(v(kmip14.TagPaddingMethod, kmip14.PaddingMethodPSS), v(kmip14.TagHashingAlgorithm, kmip14.HashingAlgorithmSHA_256),
		v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmRSA), v(kmip14.TagSaltLength, 222))
	signer := register(kmip14.ObjectTypePrivateKey, kmip14.KeyFormatTypePKCS_1, vals[0], kmip14.CryptographicUsageMaskSign, pss,
		kmip14.CryptographicAlgorithmRSA, 2048)
	msg := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16}
	sig := get(c.do(byID(kmip14.OperationSign, signer, v(kmip14.TagData, msg))).ok(0), kmip14.TagSignatureData)
	d := sha256.Sum256(msg)
	if err := rsa.VerifyPSS(&rk.PublicKey, gocrypto.SHA256, d[:], sig.([]byte), &rsa.PSSOptions{SaltLength: 222}); err != nil {
		t.Fatalf("the server's signature is not PSS SHA-256 with a 222-byte salt: %v", err)
	}

	key := bytes.Repeat([]byte{9}, 16)
	hm := params(v(kmip14.TagCryptographicAlgorithm, kmip14.CryptographicAlgorithmHMAC_SHA256))
	mk := register(kmip14.ObjectTypeSymmetricKey, kmip14.KeyFormatTypeRaw, key, kmip14.CryptographicUsageMaskMACGenerate, hm,
		kmip14.CryptographicAlgorithmAES, 128)
	mac := get(c.do(byID(kmip14.OperationMAC, mk, v(kmip14.TagData, msg))).ok(0), kmip14.TagMACData)
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	if !bytes.Equal(mac.([]byte), m.Sum(nil)) {
		t.Fatal("the MAC is not HMAC-SHA256, the key's algorithm")
	}
}
