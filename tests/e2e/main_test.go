package e2e

import (
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }
