package kms

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"net/url"
	"reflect"

	"github.com/keywarden/keywarden/kms/store"
)

// ListRecords is the listing without the index, the oracle of the indexed
// paths.
func (s *Service) ListRecords(ctx context.Context, who Identity, q ListQuery) ([]*Secret, int, error) {
	if err := s.allowProject(SecretList, who); err != nil {
		return nil, 0, err
	}
	return s.listRecords(ctx, who, q)
}

// CheckListIndex compares a full read of project's records with its list
// index and counter: one entry per record, under the right prefix, with
// the record's summary, and nothing else.
func (s *Service) CheckListIndex(ctx context.Context, project string) error {
	want := map[string][]byte{}
	names := map[string][]byte{} // ln/ key → created
	values := map[string]int64{} // nv/ key → plain entries
	plain := 0
	kvs, err := s.st.List(ctx, projectPrefix(project), "", 0)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		r, err := s.openRecord(ctx, project, kv.Key[len(projectPrefix(project)):], kv)
		if err != nil {
			return err
		}
		want[listKey(r.Secret)] = encodeSummary(r.Secret)
		if plainEntry(r.Secret) {
			plain++
			names[plainNameKey(r.Secret)] = []byte(listSuffix(r.Secret.Created, r.Secret.ID)[:listIDAt-1])
			values[listValuesKey(r.Secret)]++
		}
	}
	err = store.Scan(ctx, s.st, listNamePrefix(project), "", func(k string, v []byte) bool {
		if w, ok := names[k]; !ok || !bytes.Equal(w, v) {
			err = fmt.Errorf("name entry %q: %q, want %q", k, v, w)
		}
		delete(names, k)
		return err == nil
	})
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("%d plain entries without a name entry", len(names))
	}
	got := 0
	for _, prefix := range []string{listPrefix(project), listAsidePrefix(project)} {
		err := store.Scan(ctx, s.st, prefix, "", func(k string, v []byte) bool {
			got++
			if w, ok := want[k]; !ok {
				err = fmt.Errorf("index entry %s has no record", k)
			} else if !bytes.Equal(w, v) {
				err = fmt.Errorf("index entry %s differs from its record's summary", k)
			}
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	if got != len(want) {
		return fmt.Errorf("%d index entries for %d records", got, len(want))
	}
	n, err := s.listCount(ctx, project)
	if err != nil {
		return err
	}
	if n != plain {
		return fmt.Errorf("counter %d, plain entries %d", n, plain)
	}
	if _, counts := s.st.(store.Counter); counts {
		if kvs, err := s.st.List(ctx, listValuesPrefix(project), "", 0); err != nil || len(kvs) > 0 {
			return fmt.Errorf("value counters on a store that counts: %d (%v)", len(kvs), err)
		}
		return nil // the store counts: no counters, no fences
	}
	// Every value counter counts its plain entries (0 once all are gone).
	err = store.Scan(ctx, s.st, listValuesPrefix(project), "", func(k string, v []byte) bool {
		if c := store.CounterValue(v); c != values[k] {
			err = fmt.Errorf("value counter %s counts %d, want %d", k, c, values[k])
		}
		delete(values, k)
		return err == nil
	})
	if err != nil {
		return err
	}
	if len(values) > 0 {
		return fmt.Errorf("values without a counter: %v", values)
	}
	// Every fence counts the plain entries of its window.
	for level, digits := range fenceDigits {
		count := map[string]int64{}
		err := store.Scan(ctx, s.st, listPrefix(project), "", func(k string, _ []byte) bool {
			count[k[len(listPrefix(project)):][:digits]]++
			return true
		})
		if err != nil {
			return err
		}
		fp := fencePrefix(level, project)
		err = store.Scan(ctx, s.st, fp, "", func(k string, v []byte) bool {
			if c := store.CounterValue(v); c != count[k[len(fp):]] {
				err = fmt.Errorf("fence %s counts %d, its window holds %d", k, c, count[k[len(fp):]])
			}
			delete(count, k[len(fp):])
			return err == nil
		})
		if err != nil {
			return err
		}
		if len(count) > 0 {
			return fmt.Errorf("level %d: windows without a fence: %v", level, count)
		}
	}
	return nil
}

// DropListIndex removes the index and its marker, as a store written
// before the index has none.
func (s *Service) DropListIndex(ctx context.Context) error {
	return s.dropKeys(ctx, "l/", "lx/", "ln/", "n/", "n1/", "n2/", "n3/", "nv/", listIndexMarker) // and -2
}

// DropNameIndex removes ln/, nv/ and their marker, as a store whose index
// was built before them (session 5) has none.
func (s *Service) DropNameIndex(ctx context.Context) error {
	return s.dropKeys(ctx, "ln/", "nv/", listIndexMarker2)
}

func (s *Service) dropKeys(ctx context.Context, prefixes ...string) error {
	var ops []store.Op
	for _, prefix := range prefixes {
		kvs, err := s.st.List(ctx, prefix, "", 0)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			ops = append(ops, store.Delete(kv.Key))
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), 100)
		if err := s.st.Txn(ctx, nil, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// LegacyJSONRecord re-encodes project/id's stored record the way records
// were stored before they were CBOR (JSON with the tag as its last member),
// tagged for version: what a store written by an older build holds.
func (s *Service) LegacyJSONRecord(ctx context.Context, project, id string, version int64) ([]byte, error) {
	kv, err := s.st.Get(ctx, recordKey(project, id))
	if err != nil {
		return nil, err
	}
	r, err := s.verifyRecord(ctx, project, id, kv.Version, kv.Value)
	if err != nil {
		return nil, err
	}
	return s.encodeTagged(ctx, project, "secret:"+id, version, r)
}

// EditRecordFields rewrites the CBOR body of a stored record (fields by
// their cbor keys) and keeps its old tag: an edit by someone with store
// access but without the keys.
func EditRecordFields(raw []byte, f func(m map[uint64]any)) ([]byte, error) {
	body, tag, ok := splitTagged(raw)
	if !ok {
		return nil, fmt.Errorf("not a CBOR record")
	}
	var m map[uint64]any
	if err := recordDec.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	f(m)
	b, err := recordEnc.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(b, tag...), nil
}

// CachedMatchesStored tells whether project/id's cached record (primed by
// its create) is exactly what its stored bytes verify and decode to.
func (s *Service) CachedMatchesStored(ctx context.Context, project, id string) error {
	kv, err := s.st.Get(ctx, recordKey(project, id))
	if err != nil {
		return err
	}
	s.cache.mu.Lock()
	e, ok := s.cache.entries[id]
	s.cache.mu.Unlock()
	if !ok || e.version != kv.Version || e.hash != maphash.Bytes(s.cache.seed, kv.Value) {
		return fmt.Errorf("no cached record for the stored bytes of %s", id)
	}
	r, err := s.verifyRecord(ctx, project, id, kv.Version, kv.Value)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(r, e.rec) {
		a, b := reflect.ValueOf(*e.rec.Secret), reflect.ValueOf(*r.Secret)
		for i := range a.NumField() {
			if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
				return fmt.Errorf("cached and stored records differ in %s: %#v, %#v", a.Type().Field(i).Name, a.Field(i).Interface(), b.Field(i).Interface())
			}
		}
		return fmt.Errorf("cached and stored records differ (sealed)")
	}
	return nil
}

// CheckNameColumn compares project's name column, which must be held and
// ready, with one built afresh from the store: the same live entries, in
// the same order, with the same names and counted values.
func (s *Service) CheckNameColumn(ctx context.Context, project string) error {
	if s.names == nil {
		return fmt.Errorf("no name columns on this store")
	}
	s.names.mu.Lock()
	c := s.names.cols[url.PathEscape(project)]
	s.names.mu.Unlock()
	if c == nil {
		return fmt.Errorf("no name column for %s", project)
	}
	fresh := newNameColumn(c.esc)
	if err := (&nameColumns{st: s.st, budget: 1 << 40}).build(ctx, fresh); err != nil {
		return err
	}
	defer fresh.release()
	type entry struct{ suffix, name, combo string }
	live := func(c *nameColumn) []entry {
		var out []entry
		for i, v := range c.vals {
			if v != deadVal {
				out = append(out, entry{c.suffixAt(i), string(c.names[c.off[i]:c.off[i+1]]), c.combos[v]})
			}
		}
		return out
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.state != columnReady {
		return fmt.Errorf("name column of %s not ready (%d)", project, c.state)
	}
	if int(c.off[len(c.off)-1]) != len(c.names) || len(c.off) != c.len()+1 {
		return fmt.Errorf("name column of %s: offsets off", project)
	}
	got, want := live(c), live(fresh)
	for i := range max(len(got), len(want)) {
		if i >= len(got) || i >= len(want) || got[i] != want[i] {
			var g, w entry
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			return fmt.Errorf("name column of %s: %d live entries, want %d; first difference at %d: %q, want %q", project, len(got), len(want), i, g, w)
		}
	}
	return nil
}

// NameColumnHeld reports whether project has a ready name column.
func (s *Service) NameColumnHeld(project string) bool {
	if s.names == nil {
		return false
	}
	s.names.mu.Lock()
	c := s.names.cols[url.PathEscape(project)]
	s.names.mu.Unlock()
	if c == nil {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state == columnReady
}

// DropNameColumns drops every name column: the next name= list builds.
func (s *Service) DropNameColumns() {
	if s.names == nil {
		return
	}
	s.names.mu.Lock()
	cols := make([]*nameColumn, 0, len(s.names.cols))
	for _, c := range s.names.cols {
		cols = append(cols, c)
	}
	s.names.mu.Unlock()
	for _, c := range cols {
		s.names.drop(c)
	}
}

// SetNameColumnBudget changes the name columns' byte budget.
func (s *Service) SetNameColumnBudget(n int64) {
	s.names.mu.Lock()
	s.names.budget = n
	clear(s.names.skip)
	s.names.mu.Unlock()
}
