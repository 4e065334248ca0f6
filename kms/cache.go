package kms

import (
	"hash/maphash"
	"sync"
)

// recordCache keeps decoded records so the hot read path (payload GET, KMIP
// Get) skips JSON decoding. Every read still goes to the store; an entry is
// used only when the stored bytes are the ones it was decoded from (same
// version and hash), so other nodes' writes and deletes are always seen.
// Cached records are shared and must not be modified: update clones first.
type recordCache struct {
	mu      sync.Mutex
	entries map[string]cachedRecord
	max     int
	seed    maphash.Seed
}

type cachedRecord struct {
	version int64
	hash    uint64
	rec     *record
}

func newRecordCache(max int) *recordCache {
	return &recordCache{entries: make(map[string]cachedRecord, 1024), max: max, seed: maphash.MakeSeed()}
}

// decode returns the record stored as b at version, decoding only on a miss.
// open decodes (and verifies) b on a miss; only what it accepts is cached.
func (c *recordCache) decode(id string, version int64, b []byte, open func([]byte) (*record, error)) (*record, error) {
	h := maphash.Bytes(c.seed, b)
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && e.version == version && e.hash == h {
		return e.rec, nil
	}
	r, err := open(b)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.put(id, cachedRecord{version: version, hash: h, rec: r})
	c.mu.Unlock()
	return r, nil
}

// prime caches r as the decoding of b, stored for id at version, by a
// writer that just encoded r into b; r must not be modified afterwards.
func (c *recordCache) prime(id string, version int64, b []byte, r *record) {
	h := maphash.Bytes(c.seed, b)
	c.mu.Lock()
	c.put(id, cachedRecord{version: version, hash: h, rec: r})
	c.mu.Unlock()
}

// put stores e under id, evicting an arbitrary entry when full; c.mu held.
func (c *recordCache) put(id string, e cachedRecord) {
	if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
		for k := range c.entries { // evict an arbitrary entry: cheap and good enough
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = e
}

// decodesAsIs tells whether sec reads back from its record unchanged: an
// empty map or slice is stored as absent and would read back nil.
func decodesAsIs(sec *Secret) bool {
	return (sec.Metadata == nil || len(sec.Metadata) > 0) &&
		(sec.Attributes == nil || len(sec.Attributes) > 0) &&
		(sec.Consumers == nil || len(sec.Consumers) > 0)
}

func (c *recordCache) forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// clone returns a record the caller may modify.
func (r *record) clone() *record {
	return &record{Secret: r.Secret.Clone(), Sealed: r.Sealed}
}

// ownerCache maps secret id → project, so a read skips the pointer. A
// secret never changes project, so an entry goes stale only by deletion,
// which the record read catches. Bounded like the record cache: a server
// that created a million secrets must not hold a million entries.
type ownerCache struct {
	mu      sync.RWMutex
	entries map[string]string
	max     int
}

func newOwnerCache(max int) *ownerCache {
	return &ownerCache{entries: make(map[string]string, 1024), max: max}
}

func (c *ownerCache) Load(id string) (string, bool) {
	c.mu.RLock()
	p, ok := c.entries[id]
	c.mu.RUnlock()
	return p, ok
}

func (c *ownerCache) Store(id, project string) {
	c.mu.Lock()
	if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
		for k := range c.entries { // evict an arbitrary entry, as recordCache does
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = project
	c.mu.Unlock()
}

func (c *ownerCache) Delete(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}
