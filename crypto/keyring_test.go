package crypto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	ctx  = context.Background()
	bind = Binding{SecretID: "0b7e4a4e-9d0c-4c39-9d3e-2f1f6a3c5b10", Project: "proj-a", Type: "symmetric"}
)

func newTestKeyring(t testing.TB) (*Keyring, *memKEKStore, *RootKey) {
	t.Helper()
	rk := testRootKey(t)
	st := newMemKEKStore()
	return NewKeyring(rk, st), st, rk
}

func mustSeal(t testing.TB, k *Keyring, b Binding, pt []byte) *Envelope {
	t.Helper()
	e, err := k.Seal(ctx, b, pt)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return e
}

func mustOpen(t testing.TB, k *Keyring, b Binding, e *Envelope) []byte {
	t.Helper()
	pt, err := k.Open(ctx, b, e)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return pt
}

func cloneEnvelope(e *Envelope) *Envelope {
	return &Envelope{Version: e.Version, WrappedDEK: bytes.Clone(e.WrappedDEK), Ciphertext: bytes.Clone(e.Ciphertext)}
}

func TestSealOpenRoundTrip(t *testing.T) {
	k, _, _ := newTestKeyring(t)
	for _, n := range []int{0, 1, 32, 20000} {
		pt := bytes.Repeat([]byte{0xa5}, n)
		e := mustSeal(t, k, bind, pt)
		if e.Version != EnvelopeVersion {
			t.Fatalf("version %d", e.Version)
		}
		if n >= 8 && bytes.Contains(e.Ciphertext, pt[:8]) {
			t.Fatal("plaintext visible in ciphertext")
		}
		// Through JSON, as the envelope is stored.
		js, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back Envelope
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		got := mustOpen(t, k, bind, &back)
		if !bytes.Equal(got, pt) {
			t.Fatalf("len %d: round trip mismatch", n)
		}
		Zero(got)
	}
}

func TestSealsDiffer(t *testing.T) {
	k, _, _ := newTestKeyring(t)
	pt := []byte("the same plaintext")
	a, b := mustSeal(t, k, bind, pt), mustSeal(t, k, bind, pt)
	if bytes.Equal(a.Ciphertext, b.Ciphertext) || bytes.Equal(a.WrappedDEK, b.WrappedDEK) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestWrongBindingFails(t *testing.T) {
	k, _, _ := newTestKeyring(t)
	pt := []byte("disk key")
	e := mustSeal(t, k, bind, pt)
	// proj-b has a KEK of its own; proj-c has none.
	mustSeal(t, k, Binding{SecretID: "x", Project: "proj-b", Type: "symmetric"}, pt)

	for name, b := range map[string]Binding{
		"id":               {SecretID: "8d1c1a52-0000-4000-8000-000000000000", Project: bind.Project, Type: bind.Type},
		"project":          {SecretID: bind.SecretID, Project: "proj-b", Type: bind.Type},
		"project no KEK":   {SecretID: bind.SecretID, Project: "proj-c", Type: bind.Type},
		"type":             {SecretID: bind.SecretID, Project: bind.Project, Type: "passphrase"},
		"shifted boundary": {SecretID: bind.SecretID + "p", Project: "roj-a", Type: bind.Type},
	} {
		pt, err := k.Open(ctx, b, e)
		if !errors.Is(err, ErrDecrypt) || pt != nil {
			t.Errorf("%s: Open = %q, %v; want ErrDecrypt", name, pt, err)
		}
	}
	mustOpen(t, k, bind, e) // still fine under its own binding
}

func TestAADUnambiguous(t *testing.T) {
	seen := map[string]string{}
	for _, b := range []Binding{
		{"a", "bc", "d"}, {"ab", "c", "d"}, {"a", "b", "cd"}, {"abc", "d", "x"},
		{"a\x00\x00\x00\x01b", "c", "d"},
	} {
		for _, dom := range []string{domainDEK, domainPayload} {
			aad := string(appendBindingAAD(nil, dom, b))
			if prev, dup := seen[aad]; dup {
				t.Fatalf("AAD collision: %v/%s and %s", b, dom, prev)
			}
			seen[aad] = fmt.Sprint(b, dom)
		}
	}
	if string(kekAAD("p")) == string(appendBindingAAD(nil, domainDEK, Binding{"p", "", ""})) {
		t.Fatal("KEK and DEK AADs collide")
	}
	s := newScratch(bind)
	if !bytes.Equal(s.dekAAD, appendBindingAAD(nil, domainDEK, bind)) ||
		!bytes.Equal(s.payloadAAD, appendBindingAAD(nil, domainPayload, bind)) {
		t.Fatal("scratch AADs differ from the reference encoding")
	}
}

func TestTamperingFails(t *testing.T) {
	k, _, _ := newTestKeyring(t)
	pt := bytes.Repeat([]byte("payload!"), 8)
	e := mustSeal(t, k, bind, pt)
	other := mustSeal(t, k, bind, pt)

	expectFail := func(name string, bad *Envelope) {
		t.Helper()
		got, err := k.Open(ctx, bind, bad)
		if !errors.Is(err, ErrDecrypt) || got != nil {
			t.Errorf("%s: Open = %v; want ErrDecrypt", name, err)
		}
	}
	for i := range e.WrappedDEK {
		bad := cloneEnvelope(e)
		bad.WrappedDEK[i] ^= 0x01
		expectFail(fmt.Sprintf("dek byte %d", i), bad)
	}
	for i := range e.Ciphertext {
		bad := cloneEnvelope(e)
		bad.Ciphertext[i] ^= 0x80
		expectFail(fmt.Sprintf("ct byte %d", i), bad)
	}
	bad := cloneEnvelope(e)
	bad.Ciphertext = bad.Ciphertext[:len(bad.Ciphertext)-1]
	expectFail("truncated ct", bad)
	bad = cloneEnvelope(e)
	bad.Ciphertext = bad.Ciphertext[:10]
	expectFail("short ct", bad)
	bad = cloneEnvelope(e)
	bad.WrappedDEK = append(bad.WrappedDEK, 0)
	expectFail("long dek", bad)
	bad = cloneEnvelope(e)
	bad.WrappedDEK = other.WrappedDEK
	expectFail("swapped dek", bad)
	bad = cloneEnvelope(e)
	bad.Version = 2
	expectFail("version", bad)
	expectFail("empty", &Envelope{Version: EnvelopeVersion})
	expectFail("nil", nil)
	mustOpen(t, k, bind, e)
}

func TestBindingRequired(t *testing.T) {
	k, _, _ := newTestKeyring(t)
	if _, err := k.Seal(ctx, Binding{SecretID: "x", Project: "p"}, []byte("x")); err == nil {
		t.Fatal("Seal accepted a binding without type")
	}
	e := mustSeal(t, k, bind, []byte("x"))
	if _, err := k.Open(ctx, Binding{Project: bind.Project, Type: bind.Type}, e); err == nil {
		t.Fatal("Open accepted a binding without id")
	}
}

func TestKEKCreatedOnceConcurrently(t *testing.T) {
	_, st, rk := newTestKeyring(t)
	cm := &countingMaster{MasterKey: rk}
	k := NewKeyring(cm, st)
	st.delay = 2 * time.Millisecond // keep the race window open

	const n = 50
	envs := make([]*Envelope, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			b := Binding{SecretID: fmt.Sprint("s", i), Project: "race", Type: "opaque"}
			e, err := k.Seal(ctx, b, []byte(b.SecretID))
			if err != nil {
				t.Error(err)
			}
			envs[i] = e
		})
	}
	close(start)
	wg.Wait()
	if w := st.wins.Load(); w != 1 {
		t.Fatalf("KEK stored %d times, want 1", w)
	}
	if c, w := st.creates.Load(), cm.wraps.Load(); c != 1 || w != 1 {
		t.Errorf("one keyring made %d CreateKEK calls and %d master wraps, want 1 and 1", c, w)
	}
	// A fresh keyring knows only the stored KEK.
	k2 := NewKeyring(rk, st)
	for i, e := range envs {
		b := Binding{SecretID: fmt.Sprint("s", i), Project: "race", Type: "opaque"}
		if got := mustOpen(t, k2, b, e); string(got) != b.SecretID {
			t.Fatalf("envelope %d: %q", i, got)
		}
	}
}

// Several keyrings (nodes) race on one store: the store's compare-and-set
// must decide, and the losers must adopt the winner's KEK.
func TestKEKCreatedOnceAcrossKeyrings(t *testing.T) {
	_, st, rk := newTestKeyring(t)
	st.delay = 2 * time.Millisecond
	const nodes, per = 5, 10
	rings := make([]*Keyring, nodes)
	for i := range rings {
		rings[i] = NewKeyring(rk, st)
	}
	type sealed struct {
		b Binding
		e *Envelope
	}
	var mu sync.Mutex
	var all []sealed
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range nodes * per {
		wg.Go(func() {
			<-start
			b := Binding{SecretID: fmt.Sprint("s", i), Project: "race", Type: "opaque"}
			e, err := rings[i%nodes].Seal(ctx, b, []byte(b.SecretID))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			all = append(all, sealed{b, e})
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if w := st.wins.Load(); w != 1 {
		t.Fatalf("KEK stored %d times, want 1", w)
	}
	if c := st.creates.Load(); c < 2 {
		t.Logf("only %d CreateKEK calls: the cross-node race did not happen", c)
	}
	fresh := NewKeyring(rk, st)
	for _, s := range all {
		for _, k := range append(rings, fresh) {
			if got := mustOpen(t, k, s.b, s.e); string(got) != s.b.SecretID {
				t.Fatalf("%v: %q", s.b, got)
			}
		}
	}
}

func TestSecondKeyringOpens(t *testing.T) {
	dir := t.TempDir()
	rk1, _, err := LoadOrCreateRootKey(dir + "/root.key")
	if err != nil {
		t.Fatal(err)
	}
	st := newMemKEKStore()
	e := mustSeal(t, NewKeyring(rk1, st), bind, []byte("hello"))
	rk1.Close()

	rk2, created, err := LoadOrCreateRootKey(dir + "/root.key")
	if err != nil || created {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	defer rk2.Close()
	if got := mustOpen(t, NewKeyring(rk2, st), bind, e); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	// A different root key cannot, and says which master key is needed.
	_, err = NewKeyring(testRootKey(t), st).Open(ctx, bind, e)
	if err == nil || !strings.Contains(err.Error(), rk2.ID()) {
		t.Fatalf("foreign root key: %v", err)
	}
}

func TestHotPathIsLocal(t *testing.T) {
	_, st, rk := newTestKeyring(t)
	cm := &countingMaster{MasterKey: rk}
	k := NewKeyring(cm, st)
	e := mustSeal(t, k, bind, []byte("warm up"))
	loads, creates, calls := st.loads.Load(), st.creates.Load(), cm.wraps.Load()+cm.unwraps.Load()
	for range 100 {
		e = mustSeal(t, k, bind, []byte("x"))
		Zero(mustOpen(t, k, bind, e))
	}
	if st.loads.Load() != loads || st.creates.Load() != creates || cm.wraps.Load()+cm.unwraps.Load() != calls {
		t.Fatal("warm Seal/Open touched the store or the master key")
	}
	// Local AES only: a handful of small allocations, whatever the payload.
	pt := make([]byte, 20000)
	if n := testing.AllocsPerRun(50, func() { e, _ = k.Seal(ctx, bind, pt) }); n > 8 {
		t.Errorf("Seal: %.0f allocations", n)
	}
	if n := testing.AllocsPerRun(50, func() { Zero(mustOpen(t, k, bind, e)) }); n > 8 {
		t.Errorf("Open: %.0f allocations", n)
	}
	// Forget sends the next use back to the store.
	k.Forget(bind.Project)
	Zero(mustOpen(t, k, bind, e))
	if st.loads.Load() != loads+1 || cm.unwraps.Load() != 1 {
		t.Fatalf("after Forget: loads %d→%d, unwraps %d", loads, st.loads.Load(), cm.unwraps.Load())
	}
}

func TestOpenDoesNotCreateKEK(t *testing.T) {
	k, st, _ := newTestKeyring(t)
	other, _, _ := newTestKeyring(t)
	e := mustSeal(t, other, bind, []byte("x"))
	if _, err := k.Open(ctx, bind, e); !errors.Is(err, ErrDecrypt) || !errors.Is(err, ErrKEKNotFound) {
		t.Fatalf("Open: %v", err)
	}
	if st.get(bind.Project) != nil {
		t.Fatal("Open created a KEK")
	}
}

func TestReseal(t *testing.T) {
	k, _, _ := newTestKeyring(t)
	src := bind
	dst := Binding{SecretID: "c1e5b0f2-1111-4111-8111-111111111111", Project: "proj-volume", Type: bind.Type}
	e := mustSeal(t, k, src, []byte("image key"))
	r, err := k.Reseal(ctx, src, e, dst)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustOpen(t, k, dst, r); string(got) != "image key" {
		t.Fatalf("dst: %q", got)
	}
	if _, err := k.Open(ctx, src, r); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("resealed envelope opens under src: %v", err)
	}
	if got := mustOpen(t, k, src, e); string(got) != "image key" {
		t.Fatal("source envelope damaged")
	}
	if _, err := k.Reseal(ctx, dst, e, src); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Reseal with wrong src: %v", err)
	}
}

func TestRewrapKEK(t *testing.T) {
	oldKey := testRootKey(t)
	newKey := testRootKey(t)
	st := newMemKEKStore()
	k := NewKeyring(oldKey, st)
	e := mustSeal(t, k, bind, []byte("survives rotation"))
	before := bytes.Clone(e.Ciphertext)

	w := st.get(bind.Project)
	if id, err := WrappedKEKMasterID(w); err != nil || id != oldKey.ID() {
		t.Fatalf("master id %q %v", id, err)
	}
	nw, err := RewrapKEK(ctx, oldKey, newKey, bind.Project, w)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := WrappedKEKMasterID(nw); id != newKey.ID() {
		t.Fatalf("rewrapped under %q", id)
	}
	// Re-running is a no-op; a KEK wrapped for another project is refused.
	if again, err := RewrapKEK(ctx, oldKey, newKey, bind.Project, nw); err != nil || !bytes.Equal(again, nw) {
		t.Fatalf("second rewrap: %v", err)
	}
	if _, err := RewrapKEK(ctx, oldKey, newKey, "proj-other", w); err == nil {
		t.Fatal("rewrap accepted a KEK under the wrong project")
	}
	st.set(bind.Project, nw)

	if got := mustOpen(t, NewKeyring(newKey, st), bind, e); string(got) != "survives rotation" {
		t.Fatalf("after rotation: %q", got)
	}
	if !bytes.Equal(e.Ciphertext, before) {
		t.Fatal("payload touched")
	}
	if _, err := NewKeyring(oldKey, st).Open(ctx, bind, e); err == nil || !strings.Contains(err.Error(), newKey.ID()) {
		t.Fatalf("old master after rotation: %v", err)
	}
}

func TestMalformedWrappedKEK(t *testing.T) {
	rk := testRootKey(t)
	st := newMemKEKStore()
	st.set("p", []byte{1})
	if _, err := NewKeyring(rk, st).Seal(ctx, Binding{"s", "p", "t"}, []byte("x")); err == nil {
		t.Fatal("sealed under a malformed KEK")
	}
}

func benchKeyring(b *testing.B) *Keyring {
	rk := testRootKey(b)
	return NewKeyring(rk, newMemKEKStore())
}

func BenchmarkSeal(b *testing.B) {
	for _, n := range []int{32, 20000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			k := benchKeyring(b)
			pt := make([]byte, n)
			mustSeal(b, k, bind, pt) // warm the KEK cache
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := k.Seal(ctx, bind, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{32, 20000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			k := benchKeyring(b)
			e := mustSeal(b, k, bind, make([]byte, n))
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				pt, err := k.Open(ctx, bind, e)
				if err != nil {
					b.Fatal(err)
				}
				Zero(pt)
			}
		})
	}
}
