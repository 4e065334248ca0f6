package kmip

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kmip/pki"
)

// httpsEnv serves a KMIP server's HTTPS handler as the REST listener
// does: TLS asking for (not requiring) a client certificate.
func httpsEnv(t *testing.T) (*env, string) {
	e := newEnv(t)
	srv := httptest.NewUnstartedServer(e.srv.HTTPHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert(t)}, ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return e, strings.Replace(srv.URL, "https://127.0.0.1", "https://localhost", 1) + HTTPPath
}

func httpsClient(t *testing.T, e *env, certs ...tls.Certificate) *http.Client {
	c := e.clientTLS(tls.Certificate{})
	c.Certificates, c.ServerName = certs, "localhost"
	return &http.Client{Transport: &http.Transport{TLSClientConfig: c}}
}

func post(t *testing.T, hc *http.Client, url, ctype string, body []byte) (int, string, []byte) {
	t.Helper()
	res, err := hc.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), b
}

// The KMIP profiles' XML test-case form, written by hand (not by the
// codec under test): Create an AES-256 key at KMIP 1.4.
const createXML = `<RequestMessage>
  <RequestHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="1"/>
      <ProtocolVersionMinor type="Integer" value="4"/>
    </ProtocolVersion>
    <BatchCount type="Integer" value="1"/>
  </RequestHeader>
  <BatchItem>
    <Operation type="Enumeration" value="Create"/>
    <RequestPayload>
      <ObjectType type="Enumeration" value="SymmetricKey"/>
      <TemplateAttribute>
        <Attribute>
          <AttributeName type="TextString" value="Cryptographic Algorithm"/>
          <AttributeValue type="Enumeration" value="AES"/>
        </Attribute>
        <Attribute>
          <AttributeName type="TextString" value="Cryptographic Length"/>
          <AttributeValue type="Integer" value="256"/>
        </Attribute>
        <Attribute>
          <AttributeName type="TextString" value="Cryptographic Usage Mask"/>
          <AttributeValue type="Integer" value="Decrypt Encrypt"/>
        </Attribute>
      </TemplateAttribute>
    </RequestPayload>
  </BatchItem>
</RequestMessage>`

func TestHTTPSEncodings(t *testing.T) {
	e, url := httpsEnv(t)
	hc := httpsClient(t, e, clientCert(t, "p1", "alice", "admin"))

	// XML, as the profiles' test cases write it.
	code, ctype, body := post(t, hc, url, "text/xml", []byte(createXML))
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/xml") || !bytes.HasPrefix(body, []byte("<ResponseMessage>")) {
		t.Fatalf("XML create: %d %s %.300s", code, ctype, body)
	}
	var resp ttlv.TTLV
	if err := xml.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	id := uidOf(decodeResp(t, resp).ok(0))
	if !bytes.Contains(body, []byte(`<UniqueIdentifier type="TextString" value="`+id+`"`)) {
		t.Fatalf("XML response does not name %s: %s", id, body)
	}

	// JSON: Get the key back at 2.1.
	get := requestMsg(t, version{2, 1}, nil, byID(kmip14.OperationGet, id))
	req, err := json.Marshal(ttlv.TTLV(get))
	if err != nil {
		t.Fatal(err)
	}
	code, ctype, body = post(t, hc, url, "application/json", req)
	if code != http.StatusOK || ctype != "application/json" || !bytes.HasPrefix(body, []byte(`{"tag":"ResponseMessage"`)) {
		t.Fatalf("JSON get: %d %s %.300s", code, ctype, body)
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	r := decodeResp(t, resp)
	if r.version() != (version{2, 1}) || uidOf(r.ok(0)) != id {
		t.Fatalf("JSON get answered %v for %s", r.version(), uidOf(r.ok(0)))
	}

	// TTLV, and the same caller over the KMIP port sees the same key.
	code, ctype, body = post(t, hc, url, "application/octet-stream", requestMsg(t, version{1, 4}, nil, byID(kmip14.OperationGet, id)))
	if code != http.StatusOK || ctype != "application/octet-stream" || uidOf(decodeResp(t, body).ok(0)) != id {
		t.Fatalf("TTLV get: %d %s", code, ctype)
	}
	if got := uidOf(e.dial("p1").do(byID(kmip14.OperationGet, id)).ok(0)); got != id {
		t.Fatalf("KMIP port get: %q", got)
	}
}

func TestHTTPSRefusals(t *testing.T) {
	e, url := httpsEnv(t)
	hc := httpsClient(t, e, clientCert(t, "p1", "alice", "admin"))
	id := uidOf(e.dial("p1").do(createAES(version{1, 4}, 256)).ok(0))

	// The same identity rules as the KMIP port: another project's key is
	// not theirs to read.
	other := httpsClient(t, e, clientCert(t, "p2", "bob", "admin"))
	_, _, body := post(t, other, url, "application/octet-stream", requestMsg(t, version{1, 4}, nil, byID(kmip14.OperationGet, id)))
	decodeResp(t, body).failed(0, uint32(kmip20.ResultReasonPermissionDenied))

	// No certificate, or one another CA issued: refused before any KMIP.
	for name, c := range map[string]*http.Client{"none": httpsClient(t, e), "foreign CA": httpsClient(t, e, foreignClientCert(t))} {
		if code, _, body := post(t, c, url, "text/xml", []byte(createXML)); code != http.StatusForbidden {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	// Undecodable bodies get a KMIP Invalid Message in their encoding.
	code, _, body := post(t, hc, url, "application/json", []byte(`{"tag":"RequestMessage","value":[{"tag":"NoSuchTag"`))
	var resp ttlv.TTLV
	if err := json.Unmarshal(body, &resp); code != http.StatusBadRequest || err != nil {
		t.Fatalf("bad JSON: %d %v %s", code, err, body)
	}
	decodeResp(t, resp).failed(0, uint32(kmip20.ResultReasonInvalidMessage))
	code, _, body = post(t, hc, url, "application/octet-stream", []byte{0x42, 0, 0x78, 1, 0, 0, 0, 9})
	if code != http.StatusBadRequest {
		t.Fatalf("truncated TTLV: %d", code)
	}
	decodeResp(t, body).failed(0, uint32(kmip20.ResultReasonInvalidMessage))

	if code, _, _ := post(t, hc, url, "text/plain", []byte("hello")); code != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %d", code)
	}
	res, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d %v", res.StatusCode, res.Header)
	}
	big := make([]byte, DefaultMaxMessage+1)
	if code, _, _ := post(t, hc, url, "application/octet-stream", big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %d", code)
	}
}

// foreignClientCert is a client certificate from a CA the server does not
// trust, with the same subject shape as a real one.
func foreignClientCert(t *testing.T) tls.Certificate {
	ca, _, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueClient(pki.ClientRequest{Project: "p1", User: "alice", Roles: []string{"admin"}, KeyType: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzHTTPDecode feeds XML and JSON bodies to the profiles' decoders
// (gemalto's, not written for hostile input): every body is either a
// well-formed TTLV message or an error, never a panic.
func FuzzHTTPDecode(f *testing.F) {
	f.Add(true, []byte(createXML))
	f.Add(false, []byte(`{"tag":"RequestMessage","value":[{"tag":"RequestHeader","value":[{"tag":"BatchCount","type":"Integer","value":1}]}]}`))
	f.Add(false, []byte(`{"tag":"0x420078","type":"Structure","value":[{"tag":"0x42000d","type":"Integer","value":"0x00000001"}]}`))
	f.Fuzz(func(t *testing.T, isXML bool, body []byte) {
		enc := encodings["application/json"]
		if isXML {
			enc = encodings["text/xml"]
		}
		msg, err := decodeMessage(enc, body)
		if err == nil && (msg.Valid() != nil || len(msg) != msg.FullLen()) {
			t.Fatalf("accepted a malformed message: %x", msg)
		}
	})
}
