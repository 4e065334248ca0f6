package probe

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/hosttest"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
)

func TestProbeThisHost(t *testing.T) {
	hosttest.Need(t, "cryptsetup")
	hosttest.Need(t, "qemu-img")
	start := time.Now()
	r := Prober{}.Run(context.Background())
	t.Logf("probe took %v", time.Since(start))
	j, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("%s", j)
	if !r.Cryptsetup.Available || r.Cryptsetup.Version == "" || !r.QemuImg.Available || r.QemuImg.Version == "" {
		t.Fatalf("tools not found: %+v %+v", r.Cryptsetup, r.QemuImg)
	}
	if !r.LUKS1.Supported || !r.LUKS2.Supported {
		t.Fatalf("LUKS1/2 must work on files here: %+v %+v", r.LUKS1, r.LUKS2)
	}
	if !r.QemuLUKS.Supported || !r.Qcow2LUKS.Supported || !r.EncryptionSupported {
		t.Fatalf("QEMU-native LUKS works here: %+v %+v", r.QemuLUKS, r.Qcow2LUKS)
	}
	dm, _ := hosttest.DeviceMapper()
	if r.DeviceMapper.Supported != dm || r.OpenWithDM != dm || r.Plain.Supported != dm {
		t.Fatalf("device-mapper: probe says %+v, hosttest says %v", r.DeviceMapper, dm)
	}
	if slices.Contains(r.Formats, "luks2") != dm || !slices.Contains(r.Formats, "luks1") {
		t.Fatalf("formats %v: LUKS2 is usable only with device-mapper, LUKS1 through QEMU", r.Formats)
	}
	if !dm && r.DeviceMapper.Reason == "" {
		t.Fatal("no reason given for missing device-mapper")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("probe too slow for a host agent's periodic report")
	}
}

func TestProbeWithoutTools(t *testing.T) {
	r := Prober{
		Cryptsetup: cryptsetup.New("/nonexistent/cryptsetup"),
		QemuImg:    qemuimg.New("/nonexistent/qemu-img"),
		DMControl:  filepath.Join(t.TempDir(), "no-control"),
	}.Run(context.Background())
	if r.EncryptionSupported || r.Cryptsetup.Available || r.QemuImg.Available || len(r.Formats) != 0 {
		t.Fatalf("nothing installed, yet: %+v", r)
	}
	if r.LUKS1.Reason == "" || r.QemuLUKS.Reason == "" || r.DeviceMapper.Reason == "" {
		t.Fatalf("missing reasons: %+v", r)
	}
	if _, err := os.Stat(r.Cryptsetup.Path); err == nil {
		t.Fatal("reported a path for a missing tool")
	}
}
