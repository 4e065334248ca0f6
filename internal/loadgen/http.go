package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// readResponse reads one HTTP/1.1 response from br: its status code and its
// body, appended to buf, framed by Content-Length or chunked encoding (a
// response framed by neither is an error: the connection could not be
// reused, unless the server closes it after the body). keepAlive is false when the server closes the connection after
// it. It costs next to nothing beside the server it measures, where
// http.ReadResponse builds a Response and a header map for every answer.
func readResponse(br *bufio.Reader, buf []byte) (status int, body []byte, keepAlive bool, err error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, buf, false, err
		}
		// "HTTP/1.1 200 OK"
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
			(len(line) > 12 && line[12] != ' ') {
			return 0, buf, false, fmt.Errorf("malformed status line %q", line)
		}
		status = 0
		for _, c := range line[9:12] {
			if c < '0' || c > '9' {
				return 0, buf, false, fmt.Errorf("malformed status line %q", line)
			}
			status = status*10 + int(c-'0')
		}
		keepAlive = line[7] == '1' // HTTP/1.1 keeps the connection by default
		length, chunked := int64(-1), false
		for {
			h, err := readLine(br)
			if err != nil {
				return status, buf, false, err
			}
			if len(h) == 0 {
				break
			}
			name, value, ok := bytes.Cut(h, []byte(":"))
			if !ok {
				return status, buf, false, fmt.Errorf("malformed header line %q", h)
			}
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 || (length >= 0 && n != length) {
					return status, buf, false, fmt.Errorf("bad Content-Length %q", value)
				}
				length = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				if !bytes.EqualFold(value, []byte("chunked")) {
					return status, buf, false, fmt.Errorf("unsupported Transfer-Encoding %q", value)
				}
				chunked = true
			case bytes.EqualFold(name, []byte("Connection")):
				for tok := range strings.SplitSeq(string(value), ",") {
					switch strings.ToLower(strings.TrimSpace(tok)) {
					case "close":
						keepAlive = false
					case "keep-alive":
						keepAlive = true
					}
				}
			}
		}
		switch {
		case status >= 100 && status < 200 && status != 101:
			continue // interim answer: the real one follows
		case status == 204 || status == 304:
			return status, buf, keepAlive, nil
		case chunked:
			buf, err = readChunked(br, buf)
			return status, buf, keepAlive && err == nil, err
		case length >= 0:
			if length > 64<<20 {
				return status, buf, false, fmt.Errorf("Content-Length %d is too large", length)
			}
			buf = slices.Grow(buf, int(length))[:len(buf)+int(length)]
			_, err = io.ReadFull(br, buf[len(buf)-int(length):])
			return status, buf, keepAlive && err == nil, err
		case !keepAlive:
			// The body runs to the end of the connection: uwsgi as Debian
			// packages Barbican removes Content-Length and closes each one.
			buf, err = readToEOF(br, buf)
			return status, buf, false, err
		}
		return status, buf, false, errors.New("response without Content-Length or chunked encoding on a kept-alive connection")
	}
}

// readLine reads a CRLF- (or LF-) terminated line, without its terminator;
// the line is valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = errors.New("response line too long")
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readChunked reads a chunked body (and its trailers) appended to buf.
func readChunked(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return buf, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || n > 64<<20 {
			return buf, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers up to the empty line
				t, err := readLine(br)
				if err != nil || len(t) == 0 {
					return buf, err
				}
			}
		}
		buf = slices.Grow(buf, int(n))[:len(buf)+int(n)]
		if _, err := io.ReadFull(br, buf[len(buf)-int(n):]); err != nil {
			return buf, err
		}
		if crlf, err := readLine(br); err != nil || len(crlf) != 0 {
			return buf, errors.New("chunk not followed by CRLF")
		}
	}
}

// readToEOF appends the rest of the stream to buf, up to the same 64 MiB a
// Content-Length may announce.
func readToEOF(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) > 64<<20 {
			return buf, errors.New("response body is too large")
		}
		buf = slices.Grow(buf, 4096)
		n, err := br.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
