package kmip_test

// The comparison of a response with a test-case file's expected one, and
// the rules (the test-case conventions) that let parts of it differ.

import (
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/ttlv"
)

// Rules: what the test-case conventions let differ. Each is applied only
// where it is named; everything else must be equal.
const (
	// ruleTime: a $NOW value (time stamps, dates the server sets) is the
	// run's clock within timeSlack.
	timeSlack = 2 * time.Minute
)

// ruleFreeText: Result Message is informative text (KMIP 1.4 §6.1); its
// presence is compared, not its words. Vendor Identification and Server
// Information name the implementation.
var ruleFreeText = map[string]bool{"ResultMessage": true, "VendorIdentification": true, "ServerInformation": true}

// ruleGenerated: values a server makes itself — key material of a key it
// generated, digests of that material, random data, ciphertext under a
// random IV, signatures. The expected files carry the reference server's
// values; ours are compared by type and length (random data) or by type.
var ruleGenerated = map[string]bool{"KeyMaterial": true, "DigestValue": true, "Modulus": true, "PublicExponent": true, "PrivateExponent": true}

// ruleRepertoire: a Query answer lists what the answering server offers;
// the files list the reference server's whole repertoire (Put, Notify,
// split keys …), not what a profile needs. Each kind of member the file
// shows must be present; the values are this server's (each profile's
// required operations and objects are checked in kmip/profiles_test.go).
var ruleRepertoire = map[string]bool{"Query": true}

// ruleUnordered: KMIP 1.4 §4.13-4.14 do not order the attributes (or
// names) of Get Attributes and Get Attribute List; the set must be equal.
var ruleUnordered = map[string]bool{"GetAttributes": true, "GetAttributeList": true}

// randomVar names the variable a random output binds when the file shows
// a literal (see ruleRandomized).
var randomVar = map[string]string{"Data": "$DATA_0", "IVCounterNonce": "$IV_COUNTER_NONCE"}

// literalVar names the variable a literal output binds when a later
// request uses it unbound: CS-AC-M-6 shows the MAC (deterministic: the key
// is the file's) as a literal and sends it back as $MAC_DATA. The value is
// bound only once the literal compared equal.
var literalVar = map[string]string{"MACData": "$MAC_DATA"}

var cryptoOps = map[string]bool{"Encrypt": true, "Decrypt": true}

type cmp struct {
	r          *caseRun
	reqItems   []*node // the request's batch items, in order
	item       int     // the next batch item's index
	randomized bool    // this batch item's output is random (ruleRandomized)
	op         string  // the batch item's operation, for operation-scoped rules
	gen        bool    // inside a server-generated object (Get of a created key)
	diffs      []string
	attrTag    ttlv.Tag
}

func (c *cmp) fail(path, f string, a ...any) {
	c.diffs = append(c.diffs, path+": "+fmt.Sprintf(f, a...))
}

// compare checks actual against expected at path.
func (c *cmp) compare(exp *node, act ttlv.TTLV, path string) {
	path += "/" + exp.Tag
	tag, err := ttlv.DefaultRegistry.ParseTag(exp.Tag)
	if err != nil {
		c.fail(path, "unknown tag in the expected file")
		return
	}
	if act.Tag() != tag {
		c.fail(path, "got tag %s", act.Tag())
		return
	}
	// ruleGenerator: a Random Number Generator value describes the
	// server's own generator; the reference server's is another.
	if exp.Tag == "AttributeValue" && c.attrTag == kmip14.TagRandomNumberGenerator {
		if act.Type() != ttlv.TypeStructure {
			c.fail(path, "got type %s, want Structure", act.Type())
		}
		return
	}
	if exp.Type == "" || exp.Type == "Structure" {
		if act.Type() != ttlv.TypeStructure {
			c.fail(path, "got type %s, want Structure", act.Type())
			return
		}
		c.structure(exp, act, path)
		return
	}
	typ, err := ttlv.DefaultRegistry.ParseType(exp.Type)
	if err != nil || act.Type() != ttlv.Type(typ) {
		c.fail(path, "got type %s, want %s", act.Type(), exp.Type)
		return
	}
	c.leaf(exp, act, path)
}

func (c *cmp) structure(exp *node, act ttlv.TTLV, path string) {
	got := kids(act)
	if exp.Tag == "BatchItem" {
		for _, k := range exp.Kids {
			if k.Tag == "Operation" {
				c.op = k.Value
			}
		}
		c.randomized = false
		if c.item < len(c.reqItems) && c.op == "Encrypt" {
			c.randomized = randomizedEncrypt(c.reqItems[c.item]) || c.r.randomKeys[uidVar(c.reqItems[c.item])]
		}
		c.item++
	}
	// ruleFreeText: a Result Message the file does not show is allowed.
	if !hasKid(exp, "ResultMessage") {
		got = dropTag(got, kmip14.TagResultMessage)
	}
	// ruleOptional: Located Items is optional in a Locate response and a
	// server may return it without Offset Items (KMIP 1.3+ §4.9).
	if exp.Tag == "ResponsePayload" && c.op == "Locate" && !hasKid(exp, "LocatedItems") {
		got = dropTag(got, kmip14.TagLocatedItems)
	}
	if exp.Tag == "ResponsePayload" {
		for _, g := range got {
			if g.Tag() == kmip14.TagUniqueIdentifier && c.r.generated[g.ValueTextString()] {
				c.gen = true
			}
		}
	}
	if exp.Tag == "ResponsePayload" && c.op == "Encrypt" && hasKid(exp, "IVCounterNonce") {
		c.randomized = true // the server chose the IV (ruleRandomized)
	}
	if exp.Tag == "ResponsePayload" && ruleRepertoire[c.op] {
		for _, e := range exp.Kids {
			tag, _ := ttlv.DefaultRegistry.ParseTag(e.Tag)
			if len(dropTag(got, tag)) == len(got) {
				c.fail(path, "no %s in the answer", e.Tag)
			}
		}
		return
	}
	if exp.Tag == "ResponsePayload" && ruleUnordered[c.op] {
		c.unordered(exp.Kids, got, path)
		return
	}
	saved := c.attrTag
	defer func() { c.attrTag = saved }()
	c.attrTag = 0
	for i, e := range exp.Kids {
		if i >= len(got) {
			c.fail(path, "missing %s (and %d more expected members)", e.Tag, len(exp.Kids)-i-1)
			return
		}
		c.compare(e, got[i], path)
		if e.Tag == "AttributeName" && e.Type == "TextString" {
			c.attrTag, _ = ttlv.DefaultRegistry.ParseTag(strings.ReplaceAll(e.Value, " ", ""))
		}
	}
	for _, g := range got[min(len(exp.Kids), len(got)):] {
		c.fail(path, "unexpected member %s", describe(g))
	}
}

// unordered matches every expected member to a distinct actual one.
func (c *cmp) unordered(exp []*node, got []ttlv.TTLV, path string) {
	used := make([]bool, len(got))
	for _, e := range exp {
		found := false
		var near []string // the diffs of the actual member of that name
		for i, g := range got {
			if used[i] {
				continue
			}
			try := &cmp{r: &caseRun{vars: maps.Clone(c.r.vars), generated: c.r.generated, randomKeys: c.r.randomKeys, now: c.r.now}, op: c.op, gen: c.gen}
			try.compare(e, g, path)
			if len(try.diffs) == 0 {
				used[i], found = true, true
				c.r.vars = try.r.vars
				break
			}
			if e.Tag == "Attribute" && describeAttr(g) == "Attribute "+attrLabel(e) {
				near = try.diffs
			}
		}
		c.diffs = append(c.diffs, near...)
		if !found {
			c.fail(path, "no member matches the expected %s %s", e.Tag, attrLabel(e))
		}
	}
	for i, g := range got {
		if !used[i] {
			c.fail(path, "unexpected member %s", describeAttr(g))
		}
	}
}

// attrLabel names an expected member: its value, or an Attribute's name.
func attrLabel(e *node) string {
	for _, k := range e.Kids {
		if k.Tag == "AttributeName" {
			return k.Value
		}
	}
	return e.Value
}

func describeAttr(g ttlv.TTLV) string {
	for _, k := range kids(g) {
		if k.Tag() == kmip14.TagAttributeName {
			return "Attribute " + k.ValueTextString()
		}
	}
	return describe(g)
}

func (c *cmp) leaf(exp *node, act ttlv.TTLV, path string) {
	v := exp.Value
	if t, ok := c.r.nowValue(v); ok {
		d := act.ValueDateTime().Sub(t)
		if d < -timeSlack || d > timeSlack {
			c.fail(path, "got %s, want %s (±%s)", act.ValueDateTime().UTC().Format(time.RFC3339), t.Format(time.RFC3339), timeSlack)
		}
		return
	}
	if strings.HasPrefix(v, "$") {
		if b, ok := c.r.vars[v]; ok {
			if textForm(act) != b {
				c.fail(path, "got %q, want %s = %q", textForm(act), v, b)
			}
			return
		}
		if textForm(act) == "" {
			c.fail(path, "empty value for %s", v)
			return
		}
		c.r.vars[v] = textForm(act)
		return
	}
	if ruleFreeText[exp.Tag] {
		return
	}
	if c.equal(exp, act) {
		if name, ok := literalVar[exp.Tag]; ok && c.r.vars[name] == "" {
			c.r.vars[name] = textForm(act)
		}
		return
	}
	if c.gen && ruleGenerated[exp.Tag] {
		return
	}
	// ruleGenerated, for cryptographic output: under a key the server
	// generated, the file's output is the reference server's key's; the
	// length is compared.
	if c.gen && exp.Tag == "Data" && cryptoOps[c.op] {
		if len(act.ValueRaw())*2 != len(v) {
			c.fail(path, "got %d bytes, want %d", len(act.ValueRaw()), len(v)/2)
		}
		return
	}
	// ruleRandomized: RNG output, and ciphertext under an IV the server
	// chose or with randomized padding (OAEP, PKCS#1 v1.5), are random:
	// their length is compared.
	if (c.op == "RNGRetrieve" && exp.Tag == "Data") || (c.randomized && (exp.Tag == "Data" || exp.Tag == "IVCounterNonce")) {
		if len(act.ValueRaw())*2 != len(v) {
			c.fail(path, "got %d bytes of random data, want %d", len(act.ValueRaw()), len(v)/2)
		}
		// CS-BC-M-13 shows the reference output here and names it
		// $DATA_0 and $IV_COUNTER_NONCE in the requests after.
		if name, ok := randomVar[exp.Tag]; ok && c.r.vars[name] == "" {
			c.r.vars[name] = textForm(act)
		}
		return
	}
	c.fail(path, "got %s, want %q", describe(act), v)
}

// equal compares a primitive with the file's text form of it.
func (c *cmp) equal(exp *node, act ttlv.TTLV) bool {
	v := exp.Value
	enumTag := act.Tag()
	if enumTag == kmip14.TagAttributeValue && c.attrTag != 0 {
		enumTag = c.attrTag
	}
	switch act.Type() {
	case ttlv.TypeEnumeration:
		e, err := ttlv.DefaultRegistry.ParseEnum(enumTag, v)
		return err == nil && uint32(act.ValueEnumeration()) == e
	case ttlv.TypeInteger:
		i, err := ttlv.DefaultRegistry.ParseInt(enumTag, strings.ReplaceAll(v, " ", "|"))
		return err == nil && act.ValueInteger() == i
	case ttlv.TypeLongInteger:
		i, err := strconv.ParseInt(v, 10, 64)
		return err == nil && act.ValueLongInteger() == i
	case ttlv.TypeBoolean:
		b, err := strconv.ParseBool(v)
		return err == nil && act.ValueBoolean() == b
	case ttlv.TypeInterval:
		u, err := strconv.ParseUint(v, 10, 64)
		return err == nil && uint64(act.ValueInterval()/time.Second) == u
	case ttlv.TypeDateTime:
		d, err := time.Parse(time.RFC3339Nano, v)
		return err == nil && act.ValueDateTime().Equal(d)
	case ttlv.TypeByteString, ttlv.TypeBigInteger:
		return strings.EqualFold(hex.EncodeToString(act.ValueRaw()), v)
	}
	return textForm(act) == v
}

func hasKid(n *node, tag string) bool {
	for _, k := range n.Kids {
		if k.Tag == tag {
			return true
		}
	}
	return false
}

func dropTag(ts []ttlv.TTLV, tag ttlv.Tag) []ttlv.TTLV {
	var out []ttlv.TTLV
	for _, t := range ts {
		if t.Tag() != tag {
			out = append(out, t)
		}
	}
	return out
}

// describe prints an actual item briefly (no key material beyond 16 bytes:
// test keys only, but output stays short).
func describe(t ttlv.TTLV) string {
	name := ttlv.DefaultRegistry.FormatTag(t.Tag())
	if t.Type() == ttlv.TypeStructure {
		return name + "{…}"
	}
	s := textForm(t)
	switch t.Type() {
	case ttlv.TypeEnumeration:
		s = ttlv.DefaultRegistry.FormatEnum(t.Tag(), uint32(t.ValueEnumeration()))
	case ttlv.TypeInteger:
		s = ttlv.DefaultRegistry.FormatInt(t.Tag(), t.ValueInteger())
	}
	if len(s) > 48 {
		s = s[:48] + "…"
	}
	return name + "=" + s
}

func kidsNamed(n *node, tag string) []*node {
	var out []*node
	for _, k := range n.Kids {
		if k.Tag == tag {
			out = append(out, k)
		}
	}
	return out
}

// randomizedEncrypt reports whether an Encrypt request asks for a server
// IV (Random IV) or a randomized padding.
func randomizedEncrypt(item *node) bool {
	var walk func(n *node) bool
	walk = func(n *node) bool {
		switch {
		case n.Tag == "RandomIV" && n.Value == "true":
			return true
		case n.Tag == "PaddingMethod" && (n.Value == "OAEP" || n.Value == "PKCS1v1_5"):
			return true
		}
		for _, k := range n.Kids {
			if walk(k) {
				return true
			}
		}
		return false
	}
	return walk(item)
}

// uidVar is the Unique Identifier a batch item names (a variable such as
// $UNIQUE_IDENTIFIER_0, as the file writes it).
func uidVar(item *node) string {
	for _, p := range kidsNamed(item, "RequestPayload") {
		for _, k := range kidsNamed(p, "UniqueIdentifier") {
			return k.Value
		}
	}
	return ""
}

// markRandomKeys records the objects registered or created with a
// randomized padding in their Cryptographic Parameters (CS-AC-M-OAEP-1:
// an Encrypt that names no parameters uses the key's, OAEP): their
// Encrypt output is random (ruleRandomized).
func markRandomKeys(r *caseRun, req, want *node) {
	reqs, resps := kidsNamed(req, "BatchItem"), kidsNamed(want, "BatchItem")
	for i, it := range reqs {
		if i >= len(resps) || !randomizedEncrypt(it) {
			continue
		}
		for _, k := range it.Kids {
			if k.Tag == "Operation" && (k.Value == "Register" || k.Value == "Create") {
				if v := uidVar(responseAsItem(resps[i])); v != "" {
					r.randomKeys[v] = true
				}
			}
		}
	}
}

// responseAsItem lets uidVar read a response batch item's payload.
func responseAsItem(bi *node) *node {
	out := &node{Tag: bi.Tag}
	for _, k := range kidsNamed(bi, "ResponsePayload") {
		out.Kids = append(out.Kids, &node{Tag: "RequestPayload", Kids: k.Kids})
	}
	return out
}
