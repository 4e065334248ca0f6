package hosttest

import (
	"os/exec"
	"strings"
	"testing"
)

// The scanner must catch a secret that really is in argv, or its "no leak"
// verdicts elsewhere mean nothing.
func TestCatchesSecretInArgv(t *testing.T) {
	secret := "kw-canary-5f1d2c"
	s := StartScan([][]byte{[]byte(secret)}, "sh")
	if err := exec.Command("sh", "-c", "sleep 0.3; : "+secret).Run(); err != nil {
		t.Fatal(err)
	}
	rep := s.Stop()
	if len(rep.Leaks) == 0 || rep.Seen["sh"] == 0 {
		t.Fatalf("missed a secret in argv: %d scans, sh seen %d", rep.Scans, rep.Seen["sh"])
	}
	for _, l := range rep.Leaks {
		if strings.Contains(l, secret) {
			t.Fatalf("report repeats the secret: %q", l)
		}
	}
}
