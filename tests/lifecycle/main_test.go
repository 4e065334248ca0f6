package lifecycle

import (
	"testing"

	"github.com/keywarden/keywarden/tests/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }
