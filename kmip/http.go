package kmip

import (
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/gemalto/kmip-go/kmip20"
	"github.com/gemalto/kmip-go/ttlv"

	"github.com/keywarden/keywarden/kms"
)

// KMIP over HTTPS (the KMIP Profiles' HTTPS profile): one request message
// per POST, answered with one response message in the request's encoding —
// TTLV (application/octet-stream), XML (text/xml) or JSON
// (application/json), the encodings of the KMIP profiles. The caller is the
// client certificate of the TLS connection, verified and mapped exactly as
// on the KMIP port; the listener only has to ask for one (RequestClientCert).

// HTTPPath is where the REST listener serves KMIP.
const HTTPPath = "/kmip"

// encoding is one of the profiles' message encodings.
type encoding struct {
	contentType string
	decode      func([]byte) (ttlv.TTLV, error)
	encode      func(ttlv.TTLV) ([]byte, error)
	// expand bounds how much larger than its TTLV a message may be in
	// this encoding (tag names, attributes, hex).
	expand int
}

var encodings = map[string]encoding{
	"application/octet-stream": {"application/octet-stream",
		func(b []byte) (ttlv.TTLV, error) { return ttlv.TTLV(b), nil },
		func(t ttlv.TTLV) ([]byte, error) { return t, nil }, 1},
	"text/xml": {"text/xml; charset=utf-8",
		func(b []byte) (t ttlv.TTLV, err error) { err = xml.Unmarshal(b, &t); return t, err },
		func(t ttlv.TTLV) ([]byte, error) { return xml.Marshal(t) }, 8},
	"application/json": {"application/json",
		func(b []byte) (t ttlv.TTLV, err error) { err = json.Unmarshal(b, &t); return t, err },
		func(t ttlv.TTLV) ([]byte, error) { return json.Marshal(t) }, 8},
}

func init() { encodings["application/xml"] = encodings["text/xml"] }

// HTTPHandler serves KMIP request messages POSTed to HTTPPath.
func (s *Server) HTTPHandler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "KMIP over HTTPS: POST one request message", http.StatusMethodNotAllowed)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	enc, ok := encodings[mt]
	if !ok {
		http.Error(w, "KMIP over HTTPS: Content-Type must be application/octet-stream (TTLV), text/xml or application/json",
			http.StatusUnsupportedMediaType)
		return
	}
	who, err := s.httpCaller(r)
	if err != nil {
		http.Error(w, "KMIP over HTTPS: "+err.Error(), http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.maxMsg*enc.expand)))
	if err != nil {
		http.Error(w, fmt.Sprintf("KMIP over HTTPS: the message exceeds %d bytes", s.maxMsg*enc.expand),
			http.StatusRequestEntityTooLarge)
		return
	}
	msg, err := decodeMessage(enc, body)
	clear(body) // it may hold key material
	if err != nil {
		// Undecodable: a KMIP failure the client can parse, in its encoding.
		ew := s.errorResponse(version{1, 0}, errf(kmip20.ResultReasonInvalidMessage, "%s", err))
		s.writeHTTP(w, enc, http.StatusBadRequest, ttlv.TTLV(ew.b))
		s.putWriter(ew)
		return
	}
	resp := s.Handle(r.Context(), who, msg)
	clear(msg)
	s.writeHTTP(w, enc, http.StatusOK, resp)
	clear(resp)
}

// decodeMessage turns a body into one TTLV message. The codecs are
// gemalto's and were not written for hostile input: a panic is an
// undecodable message, not a dead server.
func decodeMessage(enc encoding, body []byte) (msg ttlv.TTLV, err error) {
	defer func() {
		if v := recover(); v != nil {
			msg, err = nil, errors.New("the message cannot be decoded")
		}
	}()
	t, err := enc.decode(body)
	if err != nil {
		return nil, fmt.Errorf("the message cannot be decoded: %v", err)
	}
	if err := t.Valid(); err != nil || len(t) != t.FullLen() {
		return nil, errors.New("the message is not one well-formed TTLV structure")
	}
	return append(ttlv.TTLV(nil), t...), nil
}

func (s *Server) writeHTTP(w http.ResponseWriter, enc encoding, status int, resp ttlv.TTLV) {
	out, err := enc.encode(resp)
	if err != nil {
		s.log.Error("kmip: https: encoding a response", "err", err)
		http.Error(w, "KMIP over HTTPS: the response cannot be encoded", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", enc.contentType)
	w.Header().Set("Cache-Control", "no-store") // responses may carry key material
	w.WriteHeader(status)
	w.Write(out)
	if enc.expand > 1 { // a text copy of the response; the TTLV is the caller's to clear
		clear(out)
	}
}

// httpCaller verifies the connection's client certificate as the KMIP
// port's handshake does — chain to a trusted CA, not revoked, covered by
// an identity mapping — and returns who it is.
func (s *Server) httpCaller(r *http.Request) (kms.Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return kms.Identity{}, errors.New("a client certificate is required (TLS with a certificate the KMIP CA issued)")
	}
	certs := r.TLS.PeerCertificates
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: s.ids.Pool(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return kms.Identity{}, fmt.Errorf("the client certificate is not trusted: %v", err)
	}
	if s.ids.Revoked(certs[0]) {
		return kms.Identity{}, &RevokedError{Serial: serialHex(certs[0].SerialNumber.Bytes())}
	}
	return s.ids.Identify(chains)
}
