package cryptsetup

import (
	"testing"

	"github.com/keywarden/keywarden/hostlib/hosttest"
)

// While cryptsetup runs, no passphrase may appear in any process's command
// line. The scan must also have seen cryptsetup, or it proved nothing.
func TestPassphrasesNeverInCmdline(t *testing.T) {
	cs := newCS(t)
	dev := hosttest.SparseFile(t, 20)
	a, b, c := hosttest.HexPass(t), hosttest.HexPass(t), hosttest.HexPass(t)
	scan := hosttest.StartScan([][]byte{a, b, c}, "cryptsetup")
	for round := 0; round < 3; round++ {
		fastFormat(t, cs, dev, LUKS2, a)
		steps := []error{
			cs.TestPassphrase(ctx, dev, a),
			cs.AddKey(ctx, dev, a, b, FastPBKDF, -1),
			cs.ChangeKey(ctx, dev, b, c, FastPBKDF),
			cs.RemoveKey(ctx, dev, c),
		}
		for i, err := range steps {
			if err != nil {
				t.Fatalf("round %d step %d: %v", round, i, err)
			}
		}
	}
	rep := scan.Stop()
	if len(rep.Leaks) > 0 {
		t.Fatalf("passphrase in a command line: %q", rep.Leaks)
	}
	if rep.Seen["cryptsetup"] < 3 {
		t.Fatalf("scanner saw cryptsetup %d times in %d scans: too few to prove anything", rep.Seen["cryptsetup"], rep.Scans)
	}
	t.Logf("%d scans, cryptsetup seen %d times, no passphrase", rep.Scans, rep.Seen["cryptsetup"])
}
