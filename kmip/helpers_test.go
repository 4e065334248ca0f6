package kmip

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kmip/pki"
	"github.com/keywarden/keywarden/kms"
	"github.com/keywarden/keywarden/kms/kmstest"
)

// The tests run real parts: a bolt store in a temporary directory, the
// local root key, kms.Service, the CA of kmip/pki, TLS over loopback.

var (
	caOnce sync.Once
	caDir  string
	testCA *pki.CA
	caErr  error

	certMu    sync.Mutex
	certCache = map[string]tls.Certificate{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if caDir != "" {
		os.RemoveAll(caDir)
	}
	os.Exit(code)
}

// sharedCA is one CA (and server certificate) for the whole test binary:
// RSA key generation is the slow part.
func sharedCA(t testing.TB) *pki.CA {
	t.Helper()
	caOnce.Do(func() {
		caDir, caErr = os.MkdirTemp("", "kmip-ca-")
		if caErr == nil {
			testCA, _, caErr = pki.LoadOrCreate(caDir)
		}
		if caErr == nil {
			_, _, _, caErr = testCA.EnsureServer([]string{"127.0.0.1", "localhost"})
		}
	})
	if caErr != nil {
		t.Fatal(caErr)
	}
	return testCA
}

func serverCert(t testing.TB) tls.Certificate {
	ca := sharedCA(t)
	c, err := tls.LoadX509KeyPair(filepath.Join(ca.Dir(), pki.ServerFile), filepath.Join(ca.Dir(), pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clientCert issues (once) a client certificate for project/user/roles.
func clientCert(t testing.TB, project, user string, roles ...string) tls.Certificate {
	t.Helper()
	return issuedCert(t, sharedCA(t), "ecdsa", project, user, roles...)
}

// issuedCert issues (once) a client certificate of ca with a key type.
func issuedCert(t testing.TB, ca *pki.CA, keyType, project, user string, roles ...string) tls.Certificate {
	t.Helper()
	key := ca.Dir() + "|" + keyType + "|" + project + "|" + user + "|" + strings.Join(roles, ",")
	certMu.Lock()
	defer certMu.Unlock()
	if c, ok := certCache[key]; ok {
		return c
	}
	certPEM, keyPEM, err := ca.IssueClient(pki.ClientRequest{Project: project, User: user, Roles: roles, KeyType: keyType})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certCache[key] = c
	return c
}

type env struct {
	t    testing.TB
	svc  *kms.Service
	srv  *Server
	addr string
	ca   *pki.CA // nil: sharedCA
	// keyType of the client certificates dial uses; "" is "ecdsa" (P-256).
	keyType string
}

func (e *env) authority() *pki.CA {
	if e.ca != nil {
		return e.ca
	}
	return sharedCA(e.t)
}

type envOpt func(*Config)

// newService is a service on a fresh bolt store and root key.
func newService(t testing.TB) *kms.Service { return kmstest.Service(t, kms.Config{}) }

// newEnv starts a KMIP server on 127.0.0.1:0 over a fresh service.
func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	svc := newService(t)
	ids, err := NewIdentities(sharedCA(t).Certificate(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Service: svc, Certificate: serverCert(t), Identities: ids}
	for _, o := range opts {
		o(&cfg)
	}
	return startEnv(t, cfg)
}

// startEnv serves cfg on 127.0.0.1:0.
func startEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	svc := cfg.Service
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &env{t: t, svc: svc, srv: srv, addr: l.Addr().String()}
}

func (e *env) clientTLS(cert tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(e.authority().Certificate())
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}
}

// client is a raw KMIP connection.
type client struct {
	t   testing.TB
	c   *tls.Conn
	ver version
}

var admin = []string{"admin"}

func (e *env) dial(project string, roles ...string) *client {
	e.t.Helper()
	if len(roles) == 0 {
		roles = admin
	}
	c, err := tls.Dial("tcp", e.addr, e.clientTLS(issuedCert(e.t, e.authority(), cmp.Or(e.keyType, "ecdsa"), project, "user-"+project, roles...)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &client{t: e.t, c: c, ver: version{1, 4}}
}

// readMessage reads one TTLV message.
func readMessage(r io.Reader) ([]byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[4:])
	if n > 16<<20 {
		return nil, fmt.Errorf("response of %d bytes", n)
	}
	msg := make([]byte, 8+n)
	copy(msg, hdr[:])
	_, err := io.ReadFull(r, msg[8:])
	return msg, err
}

func (c *client) roundTrip(req []byte) []byte {
	c.t.Helper()
	c.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.c.Write(req); err != nil {
		c.t.Fatal(err)
	}
	resp, err := readMessage(c.c)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// ---- building requests with gemalto's reflective encoder (independent of
// the server's hand-written codec) ----------------------------------------

type op struct {
	op      kmip14.Operation
	id      []byte // Unique Batch Item ID
	payload []ttlv.Value
}

func v(tag ttlv.Tag, val any) ttlv.Value             { return ttlv.NewValue(tag, val) }
func st(tag ttlv.Tag, vals ...ttlv.Value) ttlv.Value { return ttlv.NewStruct(tag, vals...) }

func requestMsg(t testing.TB, ver version, headerExtra []ttlv.Value, ops ...op) []byte {
	t.Helper()
	hdr := []ttlv.Value{st(kmip14.TagProtocolVersion,
		v(kmip14.TagProtocolVersionMajor, int(ver.major)), v(kmip14.TagProtocolVersionMinor, int(ver.minor)))}
	hdr = append(hdr, headerExtra...)
	hdr = append(hdr, v(kmip14.TagBatchCount, len(ops)))
	vals := []ttlv.Value{st(tagRequestHeader, hdr...)}
	for _, o := range ops {
		bi := []ttlv.Value{v(kmip14.TagOperation, o.op)}
		if o.id != nil {
			bi = append(bi, v(kmip14.TagUniqueBatchItemID, o.id))
		}
		bi = append(bi, st(tagRequestPayload, o.payload...))
		vals = append(vals, st(tagBatchItem, bi...))
	}
	b, err := ttlv.Marshal(st(tagRequestMessage, vals...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// do sends ops in one message at the client's version and decodes the
// response.
func (c *client) do(ops ...op) *resp {
	c.t.Helper()
	return decodeResp(c.t, c.roundTrip(requestMsg(c.t, c.ver, nil, ops...)))
}

// ---- reading responses with gemalto's decoder ---------------------------

type resp struct {
	t      testing.TB
	raw    []byte
	header ttlv.Value
	items  []ttlv.Value
}

func decodeResp(t testing.TB, b []byte) *resp {
	t.Helper()
	if err := ttlv.TTLV(b).Valid(); err != nil {
		t.Fatalf("response is not valid TTLV: %v\n%x", err, b)
	}
	var m ttlv.Value
	if err := ttlv.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Tag != tagResponseMessage {
		t.Fatalf("got %v, want a Response Message", m.Tag)
	}
	r := &resp{t: t, raw: b}
	for _, x := range m.Value.(ttlv.Values) {
		switch x.Tag {
		case tagResponseHeader:
			r.header = x
		case tagBatchItem:
			r.items = append(r.items, x)
		default:
			t.Fatalf("unexpected %v in the Response Message", x.Tag)
		}
	}
	if n := get(r.header, kmip14.TagBatchCount); n == nil || n.(int32) != int32(len(r.items)) {
		t.Fatalf("Batch Count %v for %d items", n, len(r.items))
	}
	return r
}

// get returns the value at a path of tags (first match at each level).
func get(x ttlv.Value, path ...ttlv.Tag) any {
	for _, tag := range path {
		vals, ok := x.Value.(ttlv.Values)
		if !ok {
			return nil
		}
		found := false
		for _, y := range vals {
			if y.Tag == tag {
				x, found = y, true
				break
			}
		}
		if !found {
			return nil
		}
	}
	return x.Value
}

// all returns every member with tag at the end of path.
func all(x ttlv.Value, tag ttlv.Tag, path ...ttlv.Tag) []ttlv.Value {
	for _, p := range path {
		vals, _ := x.Value.(ttlv.Values)
		var next ttlv.Value
		for _, y := range vals {
			if y.Tag == p {
				next = y
				break
			}
		}
		x = next
	}
	vals, _ := x.Value.(ttlv.Values)
	var out []ttlv.Value
	for _, y := range vals {
		if y.Tag == tag {
			out = append(out, y)
		}
	}
	return out
}

func (r *resp) item(i int) ttlv.Value {
	r.t.Helper()
	if i >= len(r.items) {
		r.t.Fatalf("response has %d items, want item %d", len(r.items), i)
	}
	return r.items[i]
}

// ok asserts item i succeeded and returns its payload.
func (r *resp) ok(i int) ttlv.Value {
	r.t.Helper()
	it := r.item(i)
	if s := get(it, kmip14.TagResultStatus); s != ttlv.EnumValue(kmip14.ResultStatusSuccess) {
		r.t.Fatalf("item %d: status %v reason %v: %v", i, s, get(it, kmip14.TagResultReason), get(it, kmip14.TagResultMessage))
	}
	for _, y := range it.Value.(ttlv.Values) {
		if y.Tag == tagResponsePayload {
			return y
		}
	}
	r.t.Fatalf("item %d has no payload", i)
	return ttlv.Value{}
}

// failed asserts item i failed with reason and returns its message.
func (r *resp) failed(i int, reason uint32) string {
	r.t.Helper()
	it := r.item(i)
	if s := get(it, kmip14.TagResultStatus); s != ttlv.EnumValue(kmip14.ResultStatusOperationFailed) {
		r.t.Fatalf("item %d: status %v, want Operation Failed", i, s)
	}
	got := get(it, kmip14.TagResultReason)
	if got != ttlv.EnumValue(reason) {
		r.t.Fatalf("item %d: reason %v (%v), want 0x%x", i, got, get(it, kmip14.TagResultMessage), reason)
	}
	msg, _ := get(it, kmip14.TagResultMessage).(string)
	return msg
}

func (r *resp) version() version {
	maj, _ := get(r.header, kmip14.TagProtocolVersion, kmip14.TagProtocolVersionMajor).(int32)
	min, _ := get(r.header, kmip14.TagProtocolVersion, kmip14.TagProtocolVersionMinor).(int32)
	return version{maj, min}
}

func uidOf(x ttlv.Value) string { s, _ := get(x, tagUniqueIdentifier).(string); return s }

// ---- request payloads ----------------------------------------------------

// attrs builds the attribute container of the client's version from 1.x
// (name, value) pairs: a Template-Attribute, or a 2.x Attributes structure.
func attrs(ver version, kv ...any) ttlv.Value {
	var vals []ttlv.Value
	for i := 0; i < len(kv); i += 2 {
		name := kv[i].(string)
		if ver.v2() {
			if tag, ok := tagOfName(name); ok {
				vals = append(vals, wrapTag(tag, kv[i+1]))
				continue
			}
			vendor, n := splitVendor(name)
			vals = append(vals, st(tagAttribute, v(kmip14.TagVendorIdentification, vendor),
				v(tagAttributeName, n), wrapTag(tagAttributeValue, kv[i+1])))
			continue
		}
		vals = append(vals, attr1(name, kv[i+1]))
	}
	if ver.v2() {
		return st(tagAttributes, vals...)
	}
	return st(tagTemplateAttribute, vals...)
}

func attr1(name string, val any) ttlv.Value {
	return st(tagAttribute, v(tagAttributeName, name), wrapTag(tagAttributeValue, val))
}

// wrapTag retags a value (a ttlv.Value struct keeps its members).
func wrapTag(tag ttlv.Tag, val any) ttlv.Value {
	if x, ok := val.(ttlv.Value); ok {
		x.Tag = tag
		return x
	}
	return v(tag, val)
}

func nameVal(s string) ttlv.Value {
	return st(kmip14.TagName, v(kmip14.TagNameValue, s), v(kmip14.TagNameType, kmip14.NameTypeUninterpretedTextString))
}

func createAES(ver version, bits int, kv ...any) op {
	kv = append([]any{"Cryptographic Algorithm", kmip14.CryptographicAlgorithmAES, "Cryptographic Length", bits}, kv...)
	return op{op: kmip14.OperationCreate, payload: []ttlv.Value{
		v(tagObjectType, kmip14.ObjectTypeSymmetricKey), attrs(ver, kv...)}}
}

func byID(o kmip14.Operation, id string, extra ...ttlv.Value) op {
	p := []ttlv.Value{}
	if id != "" {
		p = append(p, v(tagUniqueIdentifier, id))
	}
	return op{op: o, payload: append(p, extra...)}
}

func revoke(id string, code kmip14.RevocationReasonCode) op {
	return byID(kmip14.OperationRevoke, id, st(kmip14.TagRevocationReason, v(kmip14.TagRevocationReasonCode, code)))
}

func keyBlock(format kmip14.KeyFormatType, material []byte, extra ...ttlv.Value) ttlv.Value {
	kb := []ttlv.Value{v(kmip14.TagKeyFormatType, format),
		st(kmip14.TagKeyValue, v(kmip14.TagKeyMaterial, material))}
	return st(kmip14.TagKeyBlock, append(kb, extra...)...)
}

func registerSecret(ver version, password []byte, kv ...any) op {
	return op{op: kmip14.OperationRegister, payload: []ttlv.Value{
		v(tagObjectType, kmip14.ObjectTypeSecretData), attrs(ver, kv...),
		st(kmip14.TagSecretData, v(kmip14.TagSecretDataType, kmip14.SecretDataTypePassword),
			keyBlock(kmip14.KeyFormatTypeOpaque, password)),
	}}
}

func who(project string) kms.Identity {
	return kms.Identity{Project: project, User: "user-" + project, Roles: admin}
}

// loadCAKey reads the test CA's private key.
func loadCAKey(t testing.TB, dir string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("CA key is not PEM")
		return nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemDecode(b []byte) ([]byte, bool) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, false
	}
	return blk.Bytes, true
}
