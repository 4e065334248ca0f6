package loadgen

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/keywarden/keywarden/kms/store/bolt"
)

// peakSampler keeps the highest RssAnon, RssFile and VmRSS seen every
// 10 ms: VmHWM is the kernel's peak of their sum, updated only where it
// unmaps or reports, so the split needs sampling of its own.
type peakSampler struct {
	mu              sync.Mutex
	anon, file, all int64
	quit, done      chan struct{}
}

func samplePeaks() *peakSampler {
	p := &peakSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			p.sample()
			select {
			case <-p.quit:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) sample() {
	a, f := rss("RssAnon"), rss("RssFile")
	p.mu.Lock()
	p.anon, p.file, p.all = max(p.anon, a), max(p.file, f), max(p.all, a+f)
	p.mu.Unlock()
}

func (p *peakSampler) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
		<-p.done
	}
}

// rows adds the sampled peaks, the live heap and the store's trims.
func (p *peakSampler) rows(row func(figure, value, limit string), st *bolt.Store) {
	p.sample()
	p.mu.Lock()
	anon, file, all := p.anon, p.file, p.all
	p.mu.Unlock()
	row("peak RSS sampled every 10 ms: anon / file / both at once", mib(anon)+" / "+mib(file)+" / "+mib(all), "")
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	live := int64(0)
	if s[0].Value.Kind() == metrics.KindUint64 {
		live = int64(s[0].Value.Uint64())
	}
	row("live heap (after a GC) / bolt map trims", mib(live)+fmt.Sprintf(" / %d", st.Trims()), "")
}
