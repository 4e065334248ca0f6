// Package probe finds out what this host can do with encrypted disks, by
// trying it on scratch files rather than trusting version numbers: the
// host's answer to "encryption_supported" (CloudStack's host flag, Nova's
// COMPUTE_EPHEMERAL_ENCRYPTION_LUKS trait).
package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/hostlib/cryptsetup"
	"github.com/keywarden/keywarden/hostlib/qemuimg"
)

// Report is the probe's JSON answer.
type Report struct {
	// EncryptionSupported: some complete path works — QEMU-native LUKS
	// (no device-mapper needed) or cryptsetup with device-mapper.
	EncryptionSupported bool `json:"encryption_supported"`
	// Formats a VM disk can use on this host: luks1, luks2, plain,
	// raw-luks, qcow2-luks.
	Formats      []string `json:"formats"`
	Cryptsetup   Tool     `json:"cryptsetup"`
	QemuImg      Tool     `json:"qemu_img"`
	DeviceMapper Check    `json:"device_mapper"`
	LUKS1        Check    `json:"luks1"`      // cryptsetup formats and unlocks LUKS1
	LUKS2        Check    `json:"luks2"`      // same for LUKS2
	Plain        Check    `json:"plain"`      // plain dm-crypt (needs device-mapper)
	QemuLUKS     Check    `json:"qemu_luks"`  // QEMU reads and writes a raw LUKS image
	Qcow2LUKS    Check    `json:"qcow2_luks"` // qemu-img offers qcow2 with LUKS
	OpenWithDM   bool     `json:"open_with_dm"`
	GoVerifier   bool     `json:"go_verifier"` // always true: keywarden-host verify works here
}

// Tool is an external binary.
type Tool struct {
	Available bool   `json:"available"`
	Path      string `json:"path,omitempty"`
	Version   string `json:"version,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Check is one capability and, when missing, why.
type Check struct {
	Supported bool   `json:"supported"`
	Reason    string `json:"reason,omitempty"`
}

// Prober holds the binaries to probe; zero values use PATH.
type Prober struct {
	Cryptsetup *cryptsetup.Cryptsetup
	QemuImg    *qemuimg.QemuImg
	QemuIO     string // qemu-io binary; "" = PATH
	DMControl  string // "" = /dev/mapper/control
}

// Run probes the host. Scratch files live in a private temporary directory
// removed before returning; their passphrase is random and never reused.
func (p Prober) Run(ctx context.Context) Report {
	cs, qi := p.Cryptsetup, p.QemuImg
	if cs == nil {
		cs = cryptsetup.New("")
	}
	if qi == nil {
		qi = qemuimg.New("")
	}
	r := Report{GoVerifier: true}
	r.Cryptsetup = tool(ctx, cs.Path, "cryptsetup", cs.Version)
	r.QemuImg = tool(ctx, qi.Path, "qemu-img", qi.Version)
	r.DeviceMapper = deviceMapper(p.DMControl)

	dir, err := os.MkdirTemp("", "keywarden-probe-")
	if err != nil {
		r.LUKS1.Reason, r.LUKS2.Reason = err.Error(), err.Error()
		return r
	}
	defer os.RemoveAll(dir)
	pass := randomPass()
	defer crypto.Zero(pass)

	var luks1File string
	if r.Cryptsetup.Available {
		luks1File, r.LUKS1 = tryLUKS(ctx, cs, dir, cryptsetup.LUKS1, pass)
		_, r.LUKS2 = tryLUKS(ctx, cs, dir, cryptsetup.LUKS2, pass)
	} else {
		r.LUKS1.Reason, r.LUKS2.Reason = "cryptsetup not available", "cryptsetup not available"
	}
	r.Plain = r.DeviceMapper
	if r.DeviceMapper.Supported && !r.Cryptsetup.Available {
		r.Plain = Check{Reason: "cryptsetup not available"}
	}
	r.OpenWithDM = r.DeviceMapper.Supported && (r.LUKS1.Supported || r.LUKS2.Supported)

	switch {
	case !r.QemuImg.Available:
		r.QemuLUKS.Reason, r.Qcow2LUKS.Reason = "qemu-img not available", "qemu-img not available"
	default:
		r.QemuLUKS = tryQemuLUKS(ctx, qi, p.QemuIO, luks1File, pass)
		r.Qcow2LUKS = qcow2Offers(ctx, qi)
	}

	// A format counts when a VM disk can actually use it here: QEMU opens
	// LUKS1 (raw or in qcow2) itself; LUKS2 and plain need device-mapper.
	add := func(ok bool, f string) {
		if ok {
			r.Formats = append(r.Formats, f)
		}
	}
	add(r.QemuLUKS.Supported || (r.LUKS1.Supported && r.OpenWithDM), "luks1")
	add(r.LUKS2.Supported && r.OpenWithDM, "luks2")
	add(r.Plain.Supported, "plain")
	add(r.QemuLUKS.Supported, "raw-luks")
	add(r.QemuLUKS.Supported && r.Qcow2LUKS.Supported, "qcow2-luks")
	r.EncryptionSupported = r.QemuLUKS.Supported || r.OpenWithDM
	return r
}

func tool(ctx context.Context, path, name string, version func(context.Context) (string, error)) Tool {
	if path == "" {
		path = name
	}
	full, err := exec.LookPath(path)
	if err != nil {
		return Tool{Error: err.Error()}
	}
	v, err := version(ctx)
	if err != nil {
		return Tool{Path: full, Error: err.Error()}
	}
	return Tool{Available: true, Path: full, Version: v}
}

func randomPass() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	defer crypto.Zero(k)
	return []byte(hex.EncodeToString(k))
}
