package kms

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/google/uuid"
)

// A name column is one project's plain entries (l/) in key order, held in
// memory in the form a name= list sweeps: the lowercased names in one
// byte blob, each followed by a 0, so that a substring filter is one
// bytes.Index pass (SIMD) instead of a million summary reads. Beside each
// name: the entry's creation time and id (its l/ suffix, whose record a
// page reads) and its counted values (alg, mode, type, bits) as an index
// into a small table, so those filters ride along. listcolumns.go keeps
// columns exact and bounded; listcolumnquery.go answers with them.
type nameColumn struct {
	esc string // the project, path-escaped as in its keys

	mu      sync.RWMutex
	state   columnState
	pending map[string]struct{} // l/ suffixes written while building

	names   []byte   // lowercased names, each followed by 0
	off     []uint32 // off[i]: where entry i's name starts; off[n]: len(names)
	created []uint64 // the suffix's 16 hex digits
	ids     []uuid.UUID
	vals    []uint32 // index into combos; deadVal: the entry was deleted
	dead    int
	combos  []string          // counted values, as comboKey encodes them
	comboIx map[string]uint32 // combos' inverse

	maps    map[unsafe.Pointer][]byte // the mappings the arrays are in (listcolumn_mem.go)
	scratch []byte

	size     atomic.Int64 // bytes held, for the budget
	lastUse  atomic.Int64 // unix nanoseconds, for the LRU
	mismatch atomic.Int32 // consecutive lists that found it off the count
}

type columnState int

const (
	columnBuilding columnState = iota
	columnReady
	columnDropped
)

const deadVal = ^uint32(0)

// errColumn: an entry the column cannot hold (an id that is not a
// canonical UUID, an unreadable summary, too many value combinations);
// the project is then listed by scanning, as before.
var errColumn = errors.New("kms: entry not representable in the name column")

func newNameColumn(esc string) *nameColumn {
	return &nameColumn{esc: esc, pending: map[string]struct{}{}, off: []uint32{0}, comboIx: map[string]uint32{}}
}

func (c *nameColumn) len() int { return len(c.vals) }

// reserve sizes the arrays for n entries (the build's count), so that a
// build does not copy them as they grow.
func (c *nameColumn) reserve(n int) {
	n += n/64 + 16 // and some creates
	c.names = alloc[byte](c, 16*n)
	c.off = append(alloc[uint32](c, n+1), 0)
	c.created, c.ids, c.vals = alloc[uint64](c, n), alloc[uuid.UUID](c, n), alloc[uint32](c, n)
}

// add appends an entry's arrays (not its name) with room made first.
func (c *nameColumn) add(created uint64, id uuid.UUID, combo uint32) {
	c.off = append(grow(c, c.off, 1), uint32(len(c.names)))
	c.created = append(grow(c, c.created, 1), created)
	c.ids = append(grow(c, c.ids, 1), id)
	c.vals = append(grow(c, c.vals, 1), combo)
}

// lowerName is the form both sides of containsFold meet in: ASCII case
// folded byte by byte, anything else through strings.ToLower (as
// containsFold does for non-ASCII), so bytes.Index on it is containsFold.
func lowerName(dst, name []byte) []byte {
	for _, b := range name {
		if b >= 0x80 {
			return append(dst, strings.ToLower(string(name))...)
		}
	}
	for _, b := range name {
		dst = append(dst, lowerASCII(b))
	}
	return dst
}

// parseColumnSuffix reads an l/ suffix (16 hex digits, '/', a canonical
// lowercase UUID).
func parseColumnSuffix(s []byte) (uint64, uuid.UUID, bool) {
	if len(s) != listIDAt+36 || s[listIDAt-1] != '/' {
		return 0, uuid.UUID{}, false
	}
	var n uint64
	for _, c := range s[:listIDAt-1] {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | uint64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		default:
			return 0, uuid.UUID{}, false
		}
	}
	id := s[listIDAt:]
	for _, c := range id {
		if 'A' <= c && c <= 'F' { // uuid.Parse accepts it; String would not give it back
			return 0, uuid.UUID{}, false
		}
	}
	u, err := uuid.ParseBytes(id)
	if err != nil {
		return 0, uuid.UUID{}, false
	}
	return n, u, true
}

// suffixAt is entry i's l/ suffix.
func (c *nameColumn) suffixAt(i int) string {
	var b [listIDAt + 36]byte
	const hexDigits = "0123456789abcdef"
	n := c.created[i]
	for j := listIDAt - 2; j >= 0; j-- {
		b[j] = hexDigits[n&0xf]
		n >>= 4
	}
	b[listIDAt-1] = '/'
	copy(b[listIDAt:], c.ids[i].String())
	return string(b[:])
}

// compareAt orders entry i against (created, id) as their suffixes order.
func (c *nameColumn) compareAt(i int, created uint64, id uuid.UUID) int {
	switch {
	case c.created[i] < created:
		return -1
	case c.created[i] > created:
		return 1
	}
	return bytes.Compare(c.ids[i][:], id[:]) // canonical hex keeps byte order
}

// summaryColumnFields reads what the column keeps of a raw summary: the
// name and the counted values' key.
func summaryColumnFields(v []byte, scratch []byte) (name, combo []byte, ok bool) {
	if len(v) == 0 || v[0] != summaryVersion {
		return nil, nil, false
	}
	r := rawReader{v: v[1:], ok: true}
	name = r.str()
	start := r.v
	r.str() // algorithm
	r.str() // mode
	r.str() // type
	vals := start[:len(start)-len(r.v)]
	r.str() // state
	r.str() // creator
	r.str() // creator source
	bits := r.varint()
	if !r.ok {
		return nil, nil, false
	}
	return name, binary.AppendVarint(append(scratch[:0], vals...), bits), true
}

// comboOf is the index of a counted-values key, added when new.
func (c *nameColumn) comboOf(key []byte) (uint32, error) {
	if i, ok := c.comboIx[string(key)]; ok {
		return i, nil
	}
	if len(c.combos) >= maxValueKeys {
		return 0, errColumn
	}
	k := string(key)
	c.comboIx[k] = uint32(len(c.combos))
	c.combos = append(c.combos, k)
	return uint32(len(c.combos) - 1), nil
}

// appendEntry adds an entry after every other (the build reads l/ in key
// order).
func (c *nameColumn) appendEntry(suffix, v, scratch []byte) ([]byte, error) {
	created, id, ok := parseColumnSuffix(suffix)
	if !ok {
		return scratch, errColumn
	}
	name, key, ok := summaryColumnFields(v, scratch)
	if !ok {
		return key, errColumn
	}
	combo, err := c.comboOf(key)
	if err != nil {
		return key, err
	}
	c.scratch = append(lowerName(c.scratch[:0], name), 0)
	c.names = append(grow(c, c.names, len(c.scratch)), c.scratch...)
	c.add(created, id, combo)
	return key, nil
}

// apply makes the entry at suffix what the store holds: v (present), or
// nothing. Applying the store's current state is idempotent, so writes
// seen twice or in either order converge (listcolumns.go).
func (c *nameColumn) apply(suffix string, v []byte, present bool) error {
	created, id, ok := parseColumnSuffix([]byte(suffix))
	if !ok {
		return errColumn
	}
	i, found := c.search(created, id)
	if !present {
		if found && c.vals[i] != deadVal {
			c.vals[i] = deadVal
			c.dead++
			if c.dead > 1024 && c.dead > c.len()/4 {
				c.compact()
			}
		}
		return nil
	}
	name, key, ok := summaryColumnFields(v, nil)
	if !ok {
		return errColumn
	}
	combo, err := c.comboOf(key)
	if err != nil {
		return err
	}
	lname := append(lowerName(nil, name), 0)
	if found {
		if c.vals[i] == deadVal {
			c.dead--
		}
		c.vals[i] = combo
		if !bytes.Equal(c.names[c.off[i]:c.off[i+1]], lname) { // renamed
			c.splice(i, int(c.off[i+1]-c.off[i]), lname)
		}
		return nil
	}
	// With room made, each Insert shifts in place: the arrays stay mapped.
	c.created = slices.Insert(grow(c, c.created, 1), i, created)
	c.ids = slices.Insert(grow(c, c.ids, 1), i, id)
	c.vals = slices.Insert(grow(c, c.vals, 1), i, combo)
	c.off = grow(c, c.off, 1) // before reading c.off[i]: grow unmaps the old array
	c.off = slices.Insert(c.off, i, c.off[i])
	c.splice(i, 0, lname)
	return nil
}

// search is where (created, id) is or would go. New entries are usually
// last, so that is tried first.
func (c *nameColumn) search(created uint64, id uuid.UUID) (int, bool) {
	n := c.len()
	if n == 0 || c.compareAt(n-1, created, id) < 0 {
		return n, false
	}
	i := sort.Search(n, func(i int) bool { return c.compareAt(i, created, id) >= 0 })
	return i, i < n && c.compareAt(i, created, id) == 0
}

// splice replaces the old bytes of entry i's name (its 0 included) with
// lname; off[i] is where they start.
func (c *nameColumn) splice(i, old int, lname []byte) {
	at := int(c.off[i])
	c.names = slices.Replace(grow(c, c.names, max(len(lname)-old, 0)), at, at+old, lname...)
	delta := uint32(len(lname) - old) // two's complement: a shorter name subtracts
	for j := i + 1; j < len(c.off); j++ {
		c.off[j] += delta
	}
}

// compact drops the deleted entries.
func (c *nameColumn) compact() {
	names, off, created, ids, vals, maps := c.names, c.off, c.created, c.ids, c.vals, c.maps
	c.maps = nil
	c.reserve(len(vals) - c.dead)
	for i, v := range vals {
		if v == deadVal {
			continue
		}
		c.names = append(grow(c, c.names, int(off[i+1]-off[i])), names[off[i]:off[i+1]]...)
		c.add(created[i], ids[i], v)
	}
	c.dead = 0
	for _, mem := range maps { // the old arrays: nothing refers to them now
		unmapMemory(mem)
	}
	c.account()
}

// account records the bytes held.
func (c *nameColumn) account() {
	c.size.Store(int64(cap(c.names) + 4*cap(c.off) + 8*cap(c.created) + 16*cap(c.ids) + 4*cap(c.vals) + 64*len(c.combos)))
}

// release frees the data of a dropped column; one being built is only
// marked, as its builder still writes it (without the lock) and drops it
// when it sees the mark.
func (c *nameColumn) release() {
	building := c.state == columnBuilding
	c.state = columnDropped
	if building {
		return
	}
	c.names, c.off, c.created, c.ids, c.vals, c.pending, c.combos, c.comboIx = nil, nil, nil, nil, nil, nil, nil, nil
	c.freeAll()
	c.size.Store(0)
}

// sweep appends to dst the entries whose name contains needle (lowered
// as lowerName does) and whose counted values ok accepts, ascending. A
// hit that runs past its entry's name into the next is no match.
func (c *nameColumn) sweep(needle []byte, ok []bool, dst []int32) []int32 {
	f := newFinder(c.names, needle)
	pos, k := 0, 0
	for pos < len(c.names) {
		j := f.index(c.names[pos:])
		if j < 0 {
			break
		}
		j += pos
		if c.off[k+1] <= uint32(j) { // the entry holding j: off[k] <= j < off[k+1]
			k += sortSearch(c.off[k+1:], uint32(j))
		}
		end := int(c.off[k+1]) - 1 // the entry's 0
		if j+len(needle) <= end {
			if v := c.vals[k]; v != deadVal && ok[v] {
				dst = append(dst, int32(k))
			}
		}
		pos = int(c.off[k+1]) // one match per entry; a later start in it ends later
	}
	return dst
}

// finder is bytes.Index tuned to names that share most of their bytes
// ("vol-000123456"): bytes.Index stops at each occurrence of the needle's
// first byte, which is then in every name. A finder anchors on the
// needle's rarest byte instead (counted in 16 windows spread over the
// haystack, as names change along it):
// bytes.IndexByte on it when it is rare, else that byte and the next
// rarest, farthest from it, tested together eight positions at a time.
type finder struct {
	needle []byte
	a, b   int // anchor positions in needle
	rare   bool
}

func newFinder(haystack, needle []byte) finder {
	f := finder{needle: needle}
	if len(needle) < 2 {
		f.rare = true
		return f
	}
	var count [256]int
	var seen [256]bool
	for _, c := range needle {
		if !seen[c] {
			seen[c] = true
			count[c] = sampleCount(haystack, c)
		}
	}
	for i, c := range needle {
		if count[c] < count[needle[f.a]] {
			f.a = i
		}
	}
	f.b = -1
	for i, c := range needle {
		if i == f.a {
			continue
		}
		if f.b < 0 || count[c] < count[needle[f.b]] || (count[c] == count[needle[f.b]] && abs(i-f.a) > abs(f.b-f.a)) {
			f.b = i
		}
	}
	f.rare = count[needle[f.a]]*64 < min(len(haystack), sampleWindows*sampleWindow)
	return f
}

const sampleWindows, sampleWindow = 16, 4096

// sampleCount counts c in sampleWindows windows spread over s (all of s
// when it is smaller).
func sampleCount(s []byte, c byte) int {
	if len(s) <= sampleWindows*sampleWindow {
		return bytes.Count(s, []byte{c})
	}
	n, step := 0, len(s)/sampleWindows
	for i := range sampleWindows {
		n += bytes.Count(s[i*step:i*step+sampleWindow], []byte{c})
	}
	return n
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// index is bytes.Index(s, f.needle).
func (f *finder) index(s []byte) int {
	n := len(f.needle)
	if n < 2 {
		return bytes.Index(s, f.needle)
	}
	if f.rare {
		for k := 0; k+n <= len(s); k++ { // k: a candidate start
			j := bytes.IndexByte(s[k+f.a:len(s)-n+f.a+1], f.needle[f.a])
			if j < 0 {
				return -1
			}
			k += j
			if bytes.Equal(s[k:k+n], f.needle) {
				return k
			}
		}
		return -1
	}
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	ca, cb := uint64(f.needle[f.a])*ones, uint64(f.needle[f.b])*ones
	far := max(f.a, f.b)
	k := 0
	for ; k+far+8 <= len(s); k += 8 {
		t := (binary.LittleEndian.Uint64(s[k+f.a:]) ^ ca) | (binary.LittleEndian.Uint64(s[k+f.b:]) ^ cb)
		m := (t - ones) &^ t & highs // a high bit at each byte that is 0 (and maybe above one)
		for m != 0 {
			c := k + bits.TrailingZeros64(m)/8
			if c+n <= len(s) && bytes.Equal(s[c:c+n], f.needle) {
				return c
			}
			m &= m - 1
		}
	}
	if j := bytes.Index(s[k:], f.needle); j >= 0 {
		return k + j
	}
	return -1
}

// sortSearch is the number of leading elements of off that are <= j.
func sortSearch(off []uint32, j uint32) int {
	lo, hi := 0, len(off)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if off[m] <= j {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
