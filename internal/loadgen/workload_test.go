package loadgen

import (
	"bufio"
	"strings"
	"testing"
)

func TestSecretRefOf(t *testing.T) {
	for in, want := range map[string]string{
		`{"secret_ref":"http://h/v1/secrets/abc"}` + "\n":     "http://h/v1/secrets/abc",
		`{ "secret_ref" : "http://h/v1/secrets/a\u0062c" }`:   "http://h/v1/secrets/abc",
		`{"secret_ref":"http://h/v1/secrets/x","other":true}`: "http://h/v1/secrets/x",
	} {
		if got, err := secretRefOf([]byte(in)); err != nil || got != want {
			t.Errorf("secretRefOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{``, `{}`, `{"secret_ref":""}`, `not json`} {
		if got, err := secretRefOf([]byte(in)); err == nil {
			t.Errorf("secretRefOf(%q) = %q, want an error", in, got)
		}
	}
}

func TestReadResponse(t *testing.T) {
	stream := "HTTP/1.1 100 Continue\r\n\r\n" +
		"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n" +
		"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n" +
		"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n" +
		"HTTP/1.1 200 OK\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(stream))
	for i, want := range []struct {
		status    int
		body      string
		keepAlive bool
		err       bool
	}{
		{201, "hello", true, false},
		{200, "abcde", true, false},
		{204, "", false, false},
		{200, "", false, false},
		{200, "", false, true},
	} {
		status, body, keepAlive, err := readResponse(br, nil)
		if status != want.status || string(body) != want.body || keepAlive != want.keepAlive || (err != nil) != want.err {
			t.Errorf("response %d: %d %q keep-alive %v err %v; want %+v", i, status, body, keepAlive, err, want)
		}
	}
	// A body framed by the connection's end (uwsgi as Debian runs Barbican).
	br = bufio.NewReader(strings.NewReader("HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n{\"secret_ref\": \"x\"}"))
	if status, body, keepAlive, err := readResponse(br, nil); status != 201 || string(body) != `{"secret_ref": "x"}` || keepAlive || err != nil {
		t.Errorf("body to EOF: %d %q %v %v", status, body, keepAlive, err)
	}
	for _, bad := range []string{"HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"} {
		if _, _, _, err := readResponse(bufio.NewReader(strings.NewReader(bad)), nil); err == nil {
			t.Errorf("readResponse(%q): want an error", bad)
		}
	}
}
