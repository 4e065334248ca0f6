package loadgen

import (
	"os"
	"slices"
	"testing"
)

// TestMain lets the test binary be the bare server's process, as the
// keywarden binary is outside tests (startBare runs this executable).
func TestMain(m *testing.M) {
	if n := len(BareServerArgs); len(os.Args) > n && slices.Equal(os.Args[1:n+1], BareServerArgs) {
		if err := ServeBare(os.Stdin, os.Stdout, slices.Contains(os.Args[n+1:], "--tls")); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
