package qemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// BlockResize grows (or shrinks) drive id to size bytes while the guest
// runs, as a cloud does when a volume is extended: the guest's virtio disk
// sees a capacity change.
func (vm *VM) BlockResize(id string, size int64) error {
	return vm.qmpRun("block_resize", map[string]any{"device": id, "size": size})
}

// qmpRun opens the QMP socket, leaves capabilities negotiation and runs one
// command, returning QMP's error if it reports one.
func (vm *VM) qmpRun(command string, args map[string]any) error {
	c, err := net.DialTimeout("unix", vm.qmp, 5*time.Second)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	enc := json.NewEncoder(c)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		return fmt.Errorf("qmp greeting: %w", err)
	}
	for _, msg := range []map[string]any{{"execute": "qmp_capabilities"}, {"execute": command, "arguments": args}} {
		if err := enc.Encode(msg); err != nil {
			return err
		}
		if err := reply(r); err != nil {
			return fmt.Errorf("qmp %s: %w", msg["execute"], err)
		}
	}
	return nil
}

// reply skips asynchronous events and decodes the command's answer.
func reply(r *bufio.Reader) error {
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return err
		}
		var m struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class, Desc string
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("bad reply %q: %w", line, err)
		}
		switch {
		case m.Error != nil:
			return fmt.Errorf("%s: %s", m.Error.Class, m.Error.Desc)
		case m.Return != nil:
			return nil
		}
	}
}
