package qemuimg

import (
	"bytes"
	"regexp"
	"strconv"
)

// qemu-img -p redraws "    (12.34/100%)" with carriage returns.
var progressRe = regexp.MustCompile(`\((\d+(?:\.\d+)?)/100%\)`)

// progressWriter turns qemu-img's progress output into callbacks, once per
// change of value.
type progressWriter struct {
	report func(float64)
	buf    []byte
	last   float64
	seen   bool
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexAny(p.buf, "\r\n")
		if i < 0 {
			break
		}
		p.line(p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	if len(p.buf) > 4096 { // no separator in sight: not progress output
		p.buf = p.buf[:0]
	}
	return len(b), nil
}

func (p *progressWriter) line(l []byte) {
	m := progressRe.FindSubmatch(l)
	if m == nil {
		return
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || (p.seen && v == p.last) {
		return
	}
	p.last, p.seen = v, true
	p.report(v)
}
