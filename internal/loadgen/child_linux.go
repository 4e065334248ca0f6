package loadgen

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel stop the started server when bench dies
// (killed, or a closed pipe), so no throw-away server outlives it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
