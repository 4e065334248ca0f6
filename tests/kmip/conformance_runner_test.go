package kmip_test

// A runner for the OASIS KMIP 1.4 test-case files (KMIP Profiles v1.4,
// test-cases/kmip-v1.4/mandatory, shipped in github.com/ovh/kmip-go's module
// zip). Each file alternates RequestMessage and expected ResponseMessage in
// the KMIP XML encoding. The runner sends each request as written (decoded
// to TTLV with gemalto's XML codec) and compares the server's response with
// the expected one, field by field. Variable items follow the test-case
// conventions; every leniency is one of the rules named `rule*` in
// conformance_compare_test.go.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"
)

// node is one element of a test-case file: a tag, and a type and value for
// a primitive, children for a structure.
type node struct {
	Tag, Type, Value string
	Kids             []*node
}

// parseCaseFile returns the top-level messages of a test-case file in order.
func parseCaseFile(path string) ([]*node, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*node
	var top []*node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if e.Name.Local == "KMIP" && len(stack) == 0 {
				continue
			}
			n := &node{Tag: e.Name.Local}
			for _, a := range e.Attr {
				switch a.Name.Local {
				case "type":
					n.Type = a.Value
				case "value":
					n.Value = a.Value
				}
			}
			if len(stack) == 0 {
				top = append(top, n)
			} else {
				p := stack[len(stack)-1]
				p.Kids = append(p.Kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	return top, nil
}

// caseRun is the state of one file's run: the variables bound from
// responses ($UNIQUE_IDENTIFIER_n, $DATA_n, …) in their XML text form.
type caseRun struct {
	vars      map[string]string
	generated map[string]bool // ids of objects the server generated
	// randomKeys are the variables naming objects whose own Cryptographic
	// Parameters randomize their Encrypt output (markRandomKeys).
	randomKeys map[string]bool
	now        time.Time
}

var nowRe = regexp.MustCompile(`^\$NOW([+-]\d+)?$`)

// nowValue resolves $NOW, $NOW-3600, $NOW+3600 against the run's clock.
func (r *caseRun) nowValue(v string) (time.Time, bool) {
	m := nowRe.FindStringSubmatch(v)
	if m == nil {
		return time.Time{}, false
	}
	off, _ := strconv.Atoi(m[1])
	return r.now.Add(time.Duration(off) * time.Second).UTC().Truncate(time.Second), true
}

// requestXML renders a request with its variables substituted.
func (r *caseRun) requestXML(n *node) (string, error) {
	var sb strings.Builder
	var walk func(n *node) error
	walk = func(n *node) error {
		if n.Type == "" || n.Type == "Structure" {
			sb.WriteString("<" + n.Tag + ">")
			for _, k := range n.Kids {
				if err := walk(k); err != nil {
					return err
				}
			}
			sb.WriteString("</" + n.Tag + ">")
			return nil
		}
		v := n.Value
		if strings.HasPrefix(v, "$") {
			if t, ok := r.nowValue(v); ok {
				v = t.Format(time.RFC3339)
			} else if b, ok := r.vars[v]; ok {
				v = b
			} else {
				return fmt.Errorf("request uses %s before a response bound it", v)
			}
		}
		sb.WriteString("<" + n.Tag + ` type="` + n.Type + `" value="`)
		xml.EscapeText(&sb, []byte(v))
		sb.WriteString(`"/>`)
		return nil
	}
	err := walk(n)
	return sb.String(), err
}

// encodeRequest turns a request node into its XML text (variables
// substituted) and TTLV, with gemalto's XML codec.
func (r *caseRun) encodeRequest(n *node) (string, ttlv.TTLV, error) {
	s, err := r.requestXML(n)
	if err != nil {
		return "", nil, err
	}
	var t ttlv.TTLV
	if err := xml.Unmarshal([]byte(s), &t); err != nil {
		return "", nil, fmt.Errorf("gemalto cannot encode the request: %v", err)
	}
	return s, t, nil
}

// sender sends one request (as its XML text and as TTLV: each transport
// takes the form it speaks) and returns the response as TTLV.
type sender func(xmlText string, req ttlv.TTLV) (ttlv.TTLV, error)

// kids lists the members of a TTLV structure.
func kids(t ttlv.TTLV) []ttlv.TTLV {
	var out []ttlv.TTLV
	b := t.ValueRaw()
	for len(b) >= 8 {
		c := ttlv.TTLV(b)
		n := c.FullLen()
		if n > len(b) || n < 8 {
			break
		}
		out = append(out, c[:n])
		b = b[n:]
	}
	return out
}

// textForm is how a primitive value appears in a test-case file (for
// binding and comparing variables).
func textForm(t ttlv.TTLV) string {
	switch t.Type() {
	case ttlv.TypeByteString, ttlv.TypeBigInteger:
		return hex.EncodeToString(t.ValueRaw())
	case ttlv.TypeTextString:
		return t.ValueTextString()
	case ttlv.TypeDateTime:
		return t.ValueDateTime().UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(t.Value())
}

// roundTrip writes one TTLV request on c and reads one response.
func roundTrip(c io.ReadWriter, req ttlv.TTLV) (ttlv.TTLV, error) {
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[4:])
	if n > 4<<20 {
		return nil, fmt.Errorf("response of %d bytes", n)
	}
	body := make([]byte, (int(n)+7)&^7)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	return append(hdr, body...), nil
}

// caseResult is the outcome of one file: the first request whose response
// deviates (step, 0-based; -1 when every response matched) and how.
type caseResult struct {
	steps int
	step  int
	diffs []string
	resp  ttlv.TTLV
}

// creators are the operations whose new objects are server-generated.
var creators = map[string]bool{"Create": true, "CreateKeyPair": true, "ReKey": true, "ReKeyKeyPair": true, "DeriveKey": true}

// runCase plays a test-case file through send and stops at the first
// deviating response (the later steps depend on the earlier ones).
// generated carries the server-generated ids across files run on one
// server (runsAfter); variables are the file's own.
func runCase(path string, send sender, generated map[string]bool) (caseResult, error) {
	msgs, err := parseCaseFile(path)
	if err != nil {
		return caseResult{}, err
	}
	r := &caseRun{vars: map[string]string{}, generated: generated, randomKeys: map[string]bool{}}
	res := caseResult{step: -1}
	for i := 0; i+1 < len(msgs); i += 2 {
		req, want := msgs[i], msgs[i+1]
		if req.Tag != "RequestMessage" || want.Tag != "ResponseMessage" {
			return res, fmt.Errorf("message %d: %s then %s, want a request then its response", i, req.Tag, want.Tag)
		}
		res.steps++
		r.now = time.Now()
		// ruleStream: each stream's Init part gets a new Correlation
		// Value; TC-STREAM-ENC-1 names every stream's $CORRELATION_VALUE.
		if hasInit(req) {
			delete(r.vars, "$CORRELATION_VALUE")
		}
		text, t, err := r.encodeRequest(req)
		if err != nil {
			return res, fmt.Errorf("request %d: %v", i/2, err)
		}
		got, err := send(text, t)
		if err != nil {
			return res, fmt.Errorf("request %d: %v", i/2, err)
		}
		markGenerated(r, got) // a Get may follow the Create in one batch
		markRandomKeys(r, req, want)
		c := &cmp{r: r, reqItems: kidsNamed(req, "BatchItem")}
		c.compare(want, got, "")
		if len(c.diffs) > 0 {
			res.step, res.diffs, res.resp = i/2, append(c.diffs, "answered: "+summary(got)), got
			return res, nil
		}
	}
	return res, nil
}

func markGenerated(r *caseRun, resp ttlv.TTLV) {
	for _, bi := range kids(resp) {
		if bi.Tag() != kmip14.TagBatchItem {
			continue
		}
		var op string
		for _, f := range kids(bi) {
			switch f.Tag() {
			case kmip14.TagOperation:
				op = strings.ReplaceAll(ttlv.DefaultRegistry.FormatEnum(f.Tag(), uint32(f.ValueEnumeration())), " ", "")
			case kmip14.TagResponsePayload:
				if !creators[op] {
					continue
				}
				for _, p := range kids(f) {
					switch p.Tag() {
					case kmip14.TagUniqueIdentifier, kmip14.TagPublicKeyUniqueIdentifier, kmip14.TagPrivateKeyUniqueIdentifier:
						r.generated[p.ValueTextString()] = true
					}
				}
			}
		}
	}
}

// resultOf returns the Result Status and Reason of the first batch item
// of a response.
func resultOf(resp ttlv.TTLV) (status, reason uint32) {
	for _, bi := range kids(resp) {
		if bi.Tag() != kmip14.TagBatchItem {
			continue
		}
		for _, f := range kids(bi) {
			switch f.Tag() {
			case kmip14.TagResultStatus:
				status = uint32(f.ValueEnumeration())
			case kmip14.TagResultReason:
				reason = uint32(f.ValueEnumeration())
			}
		}
		break
	}
	return status, reason
}

// summary names the operation, status, reason and message of each batch
// item of a response, for failure reports.
func summary(resp ttlv.TTLV) string {
	var parts []string
	for _, bi := range kids(resp) {
		if bi.Tag() != kmip14.TagBatchItem {
			continue
		}
		var fs []string
		for _, f := range kids(bi) {
			switch f.Tag() {
			case kmip14.TagOperation, kmip14.TagResultStatus, kmip14.TagResultReason:
				fs = append(fs, describe(f))
			case kmip14.TagResultMessage:
				fs = append(fs, "ResultMessage="+f.ValueTextString())
			}
		}
		parts = append(parts, strings.Join(fs, " "))
	}
	return strings.Join(parts, " | ")
}

// hasInit reports whether a request opens a stream (Init Indicator true).
func hasInit(n *node) bool {
	if n.Tag == "InitIndicator" && n.Value == "true" {
		return true
	}
	for _, k := range n.Kids {
		if hasInit(k) {
			return true
		}
	}
	return false
}
