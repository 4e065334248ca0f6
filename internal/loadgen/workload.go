package loadgen

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// createReq appends a create request for a fresh 256-bit key to buf; the
// answer's secret ref goes to sink.
func createReq(tgt target, buf []byte, sink *[]string) request {
	var key [32]byte
	rand.Read(key[:])
	var b64 [44]byte
	base64.StdEncoding.Encode(b64[:], key[:])
	const head = `{"name":"bench","secret_type":"symmetric","algorithm":"aes","bit_length":256,"mode":"xts",` +
		`"payload_content_type":"application/octet-stream","payload_content_encoding":"base64","payload":"`
	const tail = `"}`
	buf = append(buf, "POST /v1/secrets HTTP/1.1\r\nHost: "...)
	buf = append(buf, tgt.host...)
	buf = append(buf, "\r\nContent-Type: application/json\r\n"...)
	buf = append(buf, tgt.headers...)
	buf = append(buf, "Content-Length: "...)
	buf = strconv.AppendInt(buf, int64(len(head)+len(b64)+len(tail)), 10)
	buf = append(buf, "\r\n\r\n"...)
	buf = append(buf, head...)
	buf = append(buf, b64[:]...)
	buf = append(buf, tail...)
	return request{raw: buf, want: 201, onBody: func(b []byte) error {
		ref, err := secretRefOf(b)
		if err != nil {
			return err
		}
		*sink = append(*sink, ref[strings.LastIndexByte(ref, '/')+1:])
		return nil
	}}
}

// getReq appends a payload get request for secret id to buf.
func getReq(tgt target, buf []byte, id string) request {
	buf = append(buf, "GET /v1/secrets/"...)
	buf = append(buf, id...)
	buf = append(buf, "/payload HTTP/1.1\r\nHost: "...)
	buf = append(buf, tgt.host...)
	buf = append(buf, "\r\nAccept: application/octet-stream\r\n"...)
	buf = append(buf, tgt.headers...)
	buf = append(buf, "\r\n"...)
	return request{raw: buf, want: 200}
}

// secretRefOf is the secret_ref of a create answer. The server's answer,
// {"secret_ref":"..."} and a newline, is read without reflection; any other
// valid JSON goes through encoding/json.
func secretRefOf(b []byte) (string, error) {
	const pre, post = `{"secret_ref":"`, `"}`
	t := bytes.TrimRight(b, " \t\r\n")
	if inner, ok := bytes.CutPrefix(t, []byte(pre)); ok {
		if ref, ok := bytes.CutSuffix(inner, []byte(post)); ok && len(ref) > 0 && !bytes.ContainsAny(ref, "\"\\") && utf8.Valid(ref) {
			return string(ref), nil
		}
	}
	var r struct {
		Ref string `json:"secret_ref"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Ref == "" {
		return "", fmt.Errorf("create answer without a secret_ref: %q", b)
	}
	return r.Ref, nil
}
