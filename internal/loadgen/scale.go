package loadgen

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/keywarden/keywarden/consumers"
	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/store/bolt"
)

// The scale benchmark (`keywarden bench scale`): one project of N secrets
// on a bolt file, filled through kms directly (the REST fill runs at about
// 8k/s and measures nothing more here), then every figure of issue 14's
// scale target measured in this process, which plays the server: start-up,
// list pages at any offset, filtered and sorted lists, RSS, GET throughput
// against the same store when it was small, and bytes per stored secret.

// ScaleConfig is one scale run.
type ScaleConfig struct {
	Secrets int
	// DataDir keeps the store (default: temporary, removed). A store
	// there that already holds Secrets secrets is measured without a fill.
	DataDir string
	Clients int           // concurrent creators and readers
	Samples int           // calls per list case
	GetTime time.Duration // per GET measurement
	// CPUProfile, when set, receives a CPU profile of the measurements
	// (start-up to the last GET; not the fill).
	CPUProfile string
	// ListsOnly stops after the list cases (no orphan report, no GETs).
	ListsOnly bool
	// MapBudget is bolt.Options.MapBudget (<= 0: no trimming).
	MapBudget int64
}

const (
	scaleProject  = "scale"
	scalePayload  = 32 // an AES-256 disk key
	smallStore    = 1000
	keepIDs       = 100000 // ids kept for the GETs
	listLimitP99  = 50 * time.Millisecond
	rssLimit      = 512 << 20
	startupLimit  = time.Second
	getRatioLimit = 0.8
)

var scaleWho = kms.Identity{Project: scaleProject, User: "bench", Source: "local", Roles: []string{kms.RoleCreator}}

// RunScale fills and measures, writing progress and then the table to out.
func RunScale(ctx context.Context, cfg ScaleConfig, out io.Writer) error {
	if cfg.Secrets < smallStore {
		return fmt.Errorf("--secrets must be at least %d", smallStore)
	}
	cfg.Clients = max(cfg.Clients, 1)
	cfg.Samples = max(cfg.Samples, 1)
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "keywarden-scale-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	root, _, err := crypto.LoadOrCreateRootKey(filepath.Join(dir, "keys", "root.key"))
	if err != nil {
		return err
	}
	defer root.Close()
	open := func(dbPath string) (*bolt.Store, *kms.Service, time.Duration, error) {
		start := time.Now()
		st, err := bolt.Open(dbPath, bolt.Options{MapBudget: cfg.MapBudget})
		if err != nil {
			return nil, nil, 0, err
		}
		svc, err := kms.New(kms.Config{Store: st, Master: root, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			st.Close()
			return nil, nil, 0, err
		}
		// The first KEK unwrap belongs to start-up too.
		if _, _, err := svc.ListSecrets(ctx, scaleWho, kms.ListQuery{Limit: 1}); err != nil {
			st.Close()
			return nil, nil, 0, err
		}
		return st, svc, time.Since(start), nil
	}
	var rows [][3]string
	row := func(figure, value, limit string) { rows = append(rows, [3]string{figure, value, limit}) }

	// The small store: the GET figure the big one is held to.
	smallPath := filepath.Join(dir, "small.db")
	if err := os.Remove(smallPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	st, svc, _, err := open(smallPath)
	if err != nil {
		return err
	}
	smallIDs := newIDSample(smallStore)
	_, err = fill(ctx, svc, 0, smallStore, cfg.Clients, smallIDs, io.Discard)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	dbPath := filepath.Join(dir, "keywarden.db")
	ids := newIDSample(keepIDs)
	// The fill's service goes out of scope before the measurements.
	have, err := func() (int, error) {
		st, svc, took, err := open(dbPath)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		row("first open (kms.New builds any index data the store lacks)", took.Round(time.Millisecond).String(), "")
		_, have, err := svc.ListSecrets(ctx, scaleWho, kms.ListQuery{Limit: 1})
		if err != nil {
			return 0, err
		}
		if have > 0 {
			// Reusing a store: its ids come from a listing, spread over it.
			if err := sampleIDs(ctx, svc, have, ids); err != nil {
				return 0, err
			}
		}
		if have < cfg.Secrets {
			rate, err := fill(ctx, svc, have, cfg.Secrets, cfg.Clients, ids, out)
			if err != nil {
				return 0, err
			}
			row("fill (kms on bolt, no audit fsync)", fmt.Sprintf("%d secrets at %.0f/s", cfg.Secrets-have, rate), "-")
			have = cfg.Secrets
		}
		inuse, pages, file, err := st.Usage()
		if err != nil {
			return 0, err
		}
		row("store bytes per secret: keys+values / pages / file", fmt.Sprintf("%d / %d / %d", inuse/int64(have), pages/int64(have), file/int64(have)),
			fmt.Sprintf("near payload %d B + sealing", scalePayload))
		return have, st.Close()
	}()
	if err != nil {
		return err
	}

	// A fresh process's view from here on: the collector has the fill's
	// garbage back, and the peak RSS starts over.
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()
	peaks := samplePeaks()
	defer peaks.stop()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	st, svc, took, err := open(dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	row("start-up (bolt open + kms.New + first list)", took.Round(time.Millisecond).String(), "< "+startupLimit.String()+okMark(took < startupLimit))
	row("RSS after start-up", mib(rss("VmRSS")), "")

	byCreatedDesc := []kms.SortKey{{Field: "created", Desc: true}}
	byName := []kms.SortKey{{Field: "name"}}
	byNameDesc := []kms.SortKey{{Field: "name", Desc: true}}
	// Every secret of the fill is aes/xts/symmetric/256: counted filters
	// match all or none of them; name filters and mixed ones scan.
	cases := []struct {
		name string
		q    kms.ListQuery
	}{
		{"list limit=100 offset=0", kms.ListQuery{Limit: 100}},
		{"list limit=100 offset=N/2", kms.ListQuery{Limit: 100, Offset: have / 2}},
		{"list limit=100 offset=N-100", kms.ListQuery{Limit: 100, Offset: have - 100}},
		{"list sort=created:desc offset=N/2", kms.ListQuery{Limit: 100, Offset: have / 2, Sort: byCreatedDesc}},
		{"list name=<one secret's> (filter)", kms.ListQuery{Limit: 100, Name: secretName(have / 3)}},
		{"list name=vol-0001&alg=aes (N/10 match)", kms.ListQuery{Limit: 100, Name: "vol-0001", Algorithm: "aes"}},
		{"list alg=aes offset=N/2 (filter)", kms.ListQuery{Limit: 100, Offset: have / 2, Algorithm: "aes"}},
		{"list alg=aes&mode=xts&bits=256 offset=N-100", kms.ListQuery{Limit: 100, Offset: have - 100, Algorithm: "aes", Mode: "xts", BitLength: 256}},
		{"list secret_type=symmetric sort=created:desc offset=N/2", kms.ListQuery{Limit: 100, Offset: have / 2, Type: kms.Symmetric, Sort: byCreatedDesc}},
		{"list alg=des (none match)", kms.ListQuery{Limit: 100, Algorithm: "des"}},
		{"list bits=128&name=vol (none match)", kms.ListQuery{Limit: 100, BitLength: 128, Name: "vol"}},
		{"list sort=name offset=0", kms.ListQuery{Limit: 100, Sort: byName}},
		{"list sort=name offset=N/2", kms.ListQuery{Limit: 100, Offset: have / 2, Sort: byName}},
		{"list sort=name offset=N-100", kms.ListQuery{Limit: 100, Offset: have - 100, Sort: byName}},
		{"list sort=name:desc offset=0", kms.ListQuery{Limit: 100, Sort: byNameDesc}},
		{"list sort=name:desc offset=N/2", kms.ListQuery{Limit: 100, Offset: have / 2, Sort: byNameDesc}},
		{"list sort=name:desc offset=N-100", kms.ListQuery{Limit: 100, Offset: have - 100, Sort: byNameDesc}},
	}
	for _, c := range cases {
		lat, total, err := timeList(ctx, svc, c.q, cfg.Samples)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		p50, p99 := lat[len(lat)/2], lat[(len(lat)-1)*99/100]
		row(c.name, fmt.Sprintf("p50 %s p99 %s (total %d, %d calls)", p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), total, len(lat)),
			"p99 < "+listLimitP99.String()+okMark(p99 < listLimitP99))
	}
	row("name columns held (name= lists)", mib(svc.NameColumnsBytes()), "")
	if cfg.ListsOnly {
		peak := rss("VmHWM")
		row("peak RSS over the lists", mib(peak), "< 512 MiB"+okMark(peak < rssLimit))
		peaks.rows(row, st)
		runtime.KeepAlive(svc)
		return writeRows(out, rows, have, cfg.Clients)
	}
	// The orphan report reads every record of every project (it pages
	// through the store; the record cache bounds what stays).
	start := time.Now()
	orphans, err := svc.FindOrphans(ctx, consumers.OrphanRule{Grace: time.Hour})
	if err != nil {
		return err
	}
	row("orphan report over the store", fmt.Sprintf("%s (%d orphans: the fill's keys are retained)", time.Since(start).Round(time.Millisecond), len(orphans)), "")
	peakLists := rss("VmHWM")
	row("peak RSS over the lists and the orphan report", mib(peakLists), "< 512 MiB"+okMark(peakLists < rssLimit))
	row("RSS after the lists: anon / bolt file pages", mib(rss("RssAnon"))+" / "+mib(rss("RssFile")), "")

	// GETs: the small store, the big one over random ids and over a hot
	// set of smallStore ids, in turns, so that the machine's other load
	// weighs on all three alike; the median of each.
	sst, ssvc, _, err := open(smallPath)
	if err != nil {
		return err
	}
	defer sst.Close()
	all := ids.all()
	// The hot ids are as many as the small store holds, spread over the
	// big store (the first ones created sit together in a few pages,
	// which flatters the big store): the same key count and distribution
	// as the small store's, only the store's size differs.
	hot := make([]string, 0, smallStore)
	for i := range min(smallStore, len(all)) {
		hot = append(hot, all[i*len(all)/min(smallStore, len(all))])
	}
	// A key's first read clears KMIP's Fresh (an audited write): read
	// every sampled id once first, its own figure, so that the turns
	// below measure reads. The small store's keys get the same.
	if _, err := readOnce(ctx, ssvc, smallIDs.all(), cfg.Clients); err != nil {
		return err
	}
	firstRate, err := readOnce(ctx, svc, all, cfg.Clients)
	if err != nil {
		return err
	}
	row(fmt.Sprintf("first payload GET/s, store of %d, each of %d ids once", have, len(all)), fmt.Sprintf("%.0f", firstRate), "")
	var smallR, bigR, hotR []float64
	const turns = 5
	for range turns {
		for _, g := range []struct {
			svc   *kms.Service
			ids   []string
			rates *[]float64
		}{{ssvc, smallIDs.all(), &smallR}, {svc, all, &bigR}, {svc, hot, &hotR}} {
			r, err := gets(ctx, g.svc, g.ids, cfg.Clients, cfg.GetTime/turns)
			if err != nil {
				return err
			}
			*g.rates = append(*g.rates, r)
		}
	}
	smallRate, bigRate, hotRate := median(smallR), median(bigR), median(hotR)
	row(fmt.Sprintf("payload GET/s, store of %d", smallStore), fmt.Sprintf("%.0f", smallRate), "")
	row(fmt.Sprintf("payload GET/s, store of %d, random over %d ids", have, len(all)), fmt.Sprintf("%.0f (%.0f%%)", bigRate, 100*bigRate/smallRate),
		fmt.Sprintf(">= %.0f%%", 100*getRatioLimit)+okMark(bigRate >= getRatioLimit*smallRate))
	row(fmt.Sprintf("payload GET/s, store of %d, %d hot ids spread over it", have, len(hot)), fmt.Sprintf("%.0f (%.0f%%)", hotRate, 100*hotRate/smallRate),
		fmt.Sprintf(">= %.0f%%", 100*getRatioLimit)+okMark(hotRate >= getRatioLimit*smallRate))
	peak := rss("VmHWM")
	row("peak RSS since start-up (lists and GETs)", mib(peak), "< 512 MiB"+okMark(peak < rssLimit))
	// File pages are the mapped bolt file, the kernel's page cache to
	// reclaim; anon is the process's own memory.
	row("RSS after the GETs: anon / bolt file pages", mib(rss("RssAnon"))+" / "+mib(rss("RssFile")), "")
	peaks.rows(row, st)
	runtime.KeepAlive(svc) // its caches count in the live heap above
	runtime.KeepAlive(ssvc)

	return writeRows(out, rows, have, cfg.Clients)
}

func writeRows(out io.Writer, rows [][3]string, have, clients int) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "figure (%d secrets in one project, %d clients)\tvalue\tlimit\t\n", have, clients)
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t\n", r[0], r[1], r[2])
	}
	return w.Flush()
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

func secretName(i int) string { return fmt.Sprintf("vol-%09d", i) }

func okMark(ok bool) string {
	if ok {
		return " ok"
	}
	return " MISSED"
}

// fill creates secrets from..to-1 of the scale project with cfg.Clients
// creators, reporting progress every 10 s; it returns the rate.
func fill(ctx context.Context, svc *kms.Service, from, to, clients int, ids *idSample, out io.Writer) (float64, error) {
	var next atomic.Int64
	next.Store(int64(from))
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(out, "filled %d of %d (%.0f/s)\n", int64(from)+n, to, float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, scalePayload)
			for {
				i := int(next.Add(1) - 1)
				if i >= to || ctx.Err() != nil {
					return
				}
				crand.Read(payload)
				sec, err := svc.CreateSecret(ctx, scaleWho, kms.CreateRequest{
					Name: secretName(i), Type: kms.Symmetric, Algorithm: "aes", BitLength: 256, Mode: "xts",
					Payload: payload, ContentType: "application/octet-stream",
				})
				if err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(to))
					return
				}
				ids.add(i, sec.ID)
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return float64(done.Load()) / time.Since(start).Seconds(), firstErr
}

// sampleIDs keeps ids spread over a store being reused, its first
// smallStore first.
func sampleIDs(ctx context.Context, svc *kms.Service, have int, ids *idSample) error {
	step := max(have/keepIDs, 1) * 100
	for off := 0; off < have; off += step {
		page, _, err := svc.ListSecrets(ctx, scaleWho, kms.ListQuery{Offset: off, Limit: 100})
		if err != nil {
			return err
		}
		for j, s := range page {
			ids.add(off+j, s.ID)
		}
		if off == 0 {
			for off2 := 100; off2 < smallStore; off2 += 100 {
				page, _, err := svc.ListSecrets(ctx, scaleWho, kms.ListQuery{Offset: off2, Limit: 100})
				if err != nil {
					return err
				}
				for j, s := range page {
					ids.add(off2+j, s.ID)
				}
			}
		}
	}
	return nil
}

// idSample keeps the first smallStore ids and up to max others.
type idSample struct {
	mu    sync.Mutex
	max   int
	first []string
	rest  []string
	seen  int
}

func newIDSample(max int) *idSample { return &idSample{max: max} }

func (s *idSample) add(i int, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < smallStore && len(s.first) < smallStore {
		s.first = append(s.first, id)
		return
	}
	s.seen++
	if len(s.rest) < s.max {
		s.rest = append(s.rest, id)
	} else if j := rand.IntN(s.seen); j < s.max {
		s.rest[j] = id // reservoir: every id equally likely
	}
}

func (s *idSample) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(slices.Clone(s.first), s.rest...)
}

// gets reads random payloads of ids from clients goroutines for d and
// returns the rate.
func gets(ctx context.Context, svc *kms.Service, ids []string, clients int, d time.Duration) (float64, error) {
	if len(ids) == 0 {
		return 0, errors.New("no secrets to read")
	}
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				_, pt, err := svc.GetPayload(ctx, scaleWho, ids[rand.IntN(len(ids))])
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				crypto.Zero(pt)
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), firstErr
}

// readOnce reads each of ids' payloads once from clients goroutines and
// returns the rate.
func readOnce(ctx context.Context, svc *kms.Service, ids []string, clients int) (float64, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(ids); i = int(next.Add(1)) - 1 {
				_, pt, err := svc.GetPayload(ctx, scaleWho, ids[i])
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				crypto.Zero(pt)
			}
		}()
	}
	wg.Wait()
	return float64(len(ids)) / time.Since(start).Seconds(), firstErr
}

// timeList calls the list samples times and returns the sorted latencies.
// A list case stops after listBudget once it has minCalls calls: a case
// that scans a million summaries gets few.
const (
	listBudget = 10 * time.Second
	minCalls   = 10
)

func timeList(ctx context.Context, svc *kms.Service, q kms.ListQuery, samples int) ([]time.Duration, int, error) {
	lat := make([]time.Duration, 0, samples)
	total := 0
	began := time.Now()
	for i := 0; i < samples && (i < minCalls || time.Since(began) < listBudget); i++ {
		start := time.Now()
		page, t, err := svc.ListSecrets(ctx, scaleWho, q)
		if err != nil {
			return nil, 0, err
		}
		lat = append(lat, time.Since(start))
		total = t
		if q.Name == "" && len(page) != min(q.Limit, max(t-q.Offset, 0)) {
			return nil, 0, fmt.Errorf("a page of %d, want %d", len(page), min(q.Limit, t-q.Offset))
		}
	}
	slices.Sort(lat)
	return lat, total, nil
}

// rss reads a field of /proc/self/status in bytes (0 when unknown).
func rss(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			f := bytes.Fields(rest)
			if len(f) == 2 {
				n, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// resetPeakRSS starts VmHWM over (Linux: clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func mib(n int64) string {
	if n == 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
