package kmip_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kmip"
	"github.com/keywarden/keywarden/kmip/pki"
)

// The message-encoding test cases of KMIP Profiles v1.4 (MSGENC-HTTPS-M,
// MSGENC-XML-M, MSGENC-JSON-M) run against POST /kmip as the REST listener
// serves it: TLS asking for a client certificate. Each file is sent in its
// transport's encoding — TTLV, the file's own XML text, or the KMIP JSON
// encoding — and the answer, decoded from the same encoding, is compared
// as on the KMIP port.
func TestOASISMessageEncodings(t *testing.T) {
	dir := caseDir(t)
	s := startServer(t)
	client := s.clientFiles(t, "oasis", "tester", "admin")
	url := httpsKMIP(t, s)
	hc := httpsClientFor(t, client)
	for _, tc := range []struct {
		file, ctype string
		body        func(text string, req ttlv.TTLV) ([]byte, error)
		decode      func([]byte) (ttlv.TTLV, error)
	}{
		{"MSGENC-HTTPS-M-1-14.xml", "application/octet-stream",
			func(_ string, req ttlv.TTLV) ([]byte, error) { return req, nil },
			func(b []byte) (ttlv.TTLV, error) { return ttlv.TTLV(b), nil }},
		{"MSGENC-XML-M-1-14.xml", "text/xml",
			func(text string, _ ttlv.TTLV) ([]byte, error) { return []byte(text), nil },
			func(b []byte) (t ttlv.TTLV, err error) { err = xml.Unmarshal(b, &t); return t, err }},
		{"MSGENC-JSON-M-1-14.xml", "application/json",
			func(_ string, req ttlv.TTLV) ([]byte, error) { return json.Marshal(req) },
			func(b []byte) (t ttlv.TTLV, err error) { err = json.Unmarshal(b, &t); return t, err }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			send := func(text string, req ttlv.TTLV) (ttlv.TTLV, error) {
				body, err := tc.body(text, req)
				if err != nil {
					return nil, err
				}
				res, err := hc.Post(url, tc.ctype, bytes.NewReader(body))
				if err != nil {
					return nil, err
				}
				defer res.Body.Close()
				b, err := io.ReadAll(res.Body)
				if err != nil {
					return nil, err
				}
				if res.StatusCode != http.StatusOK {
					return nil, fmt.Errorf("HTTP %d: %s", res.StatusCode, b)
				}
				return tc.decode(b)
			}
			res, err := runCase(filepath.Join(dir, tc.file), send, map[string]bool{})
			if err != nil {
				t.Fatal(err)
			}
			checkOutcome(t, tc.file, true, res)
		})
	}
}

// httpsKMIP serves the server's KMIP-over-HTTPS handler as the REST
// listener does (kmip.HTTPPath, client certificate requested).
func httpsKMIP(t *testing.T, s *server) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(s.ca.Dir(), pki.ServerFile), filepath.Join(s.ca.Dir(), pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s.srv.HTTPHandler())
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return hs.URL + kmip.HTTPPath
}

func httpsClientFor(t *testing.T, dir string) *http.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, filepath.Join(dir, "ca.pem")))
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}}}
}
