package hostlib

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// osBrickScript derives passphrases with Debian's python3-os-brick: each
// stdin line is a key in hex; each output line is JSON with what its LUKS,
// LUKS2 and plain encryptors pass to cryptsetup. os-brick 6.1 no longer
// ships the mangled-hex fallback older releases had, so "mangled" is that
// release's formula, marked as such, unless os-brick still has a method.
const osBrickScript = `
import binascii, json, sys
from os_brick.encryptors import cryptsetup, luks
def mangled(key):
    f = getattr(cryptsetup.CryptsetupEncryptor, "_get_mangled_passphrase", None)
    if f is not None:
        return f(None, key), "os-brick"
    return "".join(hex(x).replace("0x", "") for x in key), "historic formula"
for line in sys.stdin:
    key = binascii.unhexlify(line.strip())
    m, src = mangled(key)
    print(json.dumps({
        "luks": luks.LuksEncryptor._get_passphrase(None, key),
        "luks2": luks.Luks2Encryptor._get_passphrase(None, key),
        "plain": cryptsetup.CryptsetupEncryptor._get_passphrase(None, key),
        "mangled": m, "mangled_source": src,
    }))
`

// For the same key bytes, hostlib's passphrase is os-brick's, for every
// encryptor, and the legacy form is the mangled hex old releases used.
func TestPassphraseMatchesOsBrick(t *testing.T) {
	const python = "/usr/bin/python3" // Debian's: the python3 first on PATH cannot import os_brick
	if _, err := os.Stat(python); err != nil {
		t.Skip("Debian python3 is not installed")
	}
	if exec.Command(python, "-c", "import os_brick.encryptors.luks").Run() != nil {
		t.Skip("python3-os-brick is not installed (apt-get install --no-install-recommends python3-os-brick)")
	}
	keys := [][]byte{
		make([]byte, 32),               // all zero: every byte mangled
		{0x00, 0x01, 0x0f, 0x10, 0xff}, // the boundary around 0x10
		bytes.Repeat([]byte{0xab}, 64), // no low byte: no distinct legacy form
	}
	for _, n := range []int{16, 32, 32, 32, 64, 64} {
		k := make([]byte, n)
		rand.Read(k)
		keys = append(keys, k)
	}
	var in strings.Builder
	for _, k := range keys {
		in.WriteString(hex.EncodeToString(k) + "\n")
	}
	cmd := exec.Command(python, "-c", osBrickScript)
	cmd.Stdin = strings.NewReader(in.String()) // keys on stdin, never in argv
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("os-brick: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(keys) {
		t.Fatalf("os-brick answered %d lines for %d keys", len(lines), len(keys))
	}
	for i, k := range keys {
		var brick struct {
			LUKS, LUKS2, Plain, Mangled string
			MangledSource               string `json:"mangled_source"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &brick); err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{TypeSymmetric, TypeOpaque} {
			s := NewSecret("k", typ, bytes.Clone(k))
			got, err := Passphrase(s)
			if err != nil {
				t.Fatal(err)
			}
			for enc, want := range map[string]string{"luks": brick.LUKS, "luks2": brick.LUKS2, "plain": brick.Plain} {
				if string(got) != want {
					t.Errorf("%s key %x: hostlib %q, os-brick %s encryptor %q", typ, k, got, enc, want)
				}
			}
			legacy, ok := LegacyPassphrase(s)
			if !ok {
				legacy = got // no distinct legacy form: then the mangled hex is the hex
			}
			if string(legacy) != brick.Mangled {
				t.Errorf("%s key %x: legacy %q, %s %q", typ, k, legacy, brick.MangledSource, brick.Mangled)
			}
			if ok == (brick.Mangled == brick.LUKS) {
				t.Errorf("key %x: hostlib says a distinct legacy form exists: %v; os-brick's forms differ: %v", k, ok, brick.Mangled != brick.LUKS)
			}
			s.Close()
		}
		if i == 0 {
			t.Logf("legacy form checked against the %s", brick.MangledSource)
		}
	}
}
