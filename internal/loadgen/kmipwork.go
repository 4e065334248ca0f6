package loadgen

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// runKMIPOps runs the KMIP workloads: pair (one message: Create an AES-256
// key, then Get it through the ID Placeholder), create, and get (Get of
// keys made before, each connection reading its own in turn).
func (s *session) runKMIPOps(cfg Config, out io.Writer) ([]Result, error) {
	t := s.kmip
	fmt.Fprintf(out, "keywarden bench: KMIP %d.%d at %s, %d %s, %d message(s) in flight on each, %s per operation, %s\n\n",
		t.version.ProtocolVersionMajor, t.version.ProtocolVersionMinor, t.addr, cfg.Clients, conns(s.info), s.info.inflight, cfg.Duration, s.label)
	pair, create := t.pairMessage(), t.message(aesCreate())
	ids := make([][]string, cfg.Clients)
	// Each connection keeps the encoded Get of every id it reads.
	getMsgs := make([][][]byte, cfg.Clients)
	making := func(raw []byte) func(int) kmipReq {
		return func(c int) kmipReq {
			return kmipReq{raw: raw, onUID: func(id string) { ids[c] = append(ids[c], id) }}
		}
	}
	var results []Result
	for _, op := range cfg.Ops {
		var res Result
		var cpu0 [2]time.Duration
		start := func() { cpu0 = [2]time.Duration{processCPUs(t.serverPIDs), processCPU(0)}; s.profile(op) }
		switch op {
		case "pair":
			start()
			res = runKMIP(t, cfg.Clients, s.info.inflight, cfg.Duration, making(pair))
		case "create":
			start()
			res = runKMIP(t, cfg.Clients, s.info.inflight, cfg.Duration, making(create))
		case "get":
			if len(slices.Concat(ids...)) == 0 {
				seed := runKMIP(t, cfg.Clients, s.info.inflight, time.Second, making(create))
				if seed.N == 0 {
					return nil, fmt.Errorf("bench: could not create any key to read: %s", seed.FirstErr)
				}
			}
			next := make([]int, cfg.Clients)
			start()
			res = runKMIP(t, cfg.Clients, s.info.inflight, cfg.Duration, func(c int) kmipReq {
				if len(ids[c]) == 0 {
					ids[c] = slices.Concat(ids...)
				}
				i := next[c] % len(ids[c])
				next[c]++
				if i >= len(getMsgs[c]) {
					getMsgs[c] = append(getMsgs[c], t.getMessage(ids[c][i]))
				}
				return kmipReq{raw: getMsgs[c][i]}
			})
		default:
			return nil, fmt.Errorf("--ops: unknown operation %q (KMIP: pair, create, get)", op)
		}
		res.Op = op
		s.finish(&res, t.serverPIDs, cpu0, out)
		results = append(results, res)
	}
	return results, nil
}
