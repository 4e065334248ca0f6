package barbican

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Paging, as Barbican cleans it: limit defaults to 10 and is clamped to
// 1..100 (a limit that is not a number is the default); an offset that is
// not a non-negative number is 0. Lists link to the previous and next pages
// with the same limit and every other query parameter kept, in the order
// the client sent them.

const (
	defaultLimit = 10
	maxLimit     = 100
)

// page is the window of a listing request.
type page struct {
	Offset, Limit int
}

func parsePage(r *http.Request) page {
	q := r.URL.Query()
	p := page{Limit: defaultLimit}
	if n, err := strconv.Atoi(strings.TrimSpace(q.Get("offset"))); err == nil && n > 0 {
		p.Offset = n
	}
	if s := strings.TrimSpace(q.Get("limit")); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			p.Limit = min(max(n, 1), maxLimit)
		}
	}
	return p
}

// pageLinks returns the previous and next page refs of a listing of
// resource (e.g. "secrets", or "secrets/{id}/consumers") holding total
// items; "" when there is no such page. previous exists past the first
// page, next while items remain after this one.
func (a *api) pageLinks(r *http.Request, resource string, p page, total int) (previous, next string) {
	extra := queryWithout(r.URL.RawQuery, "limit", "offset")
	link := func(offset int) string {
		s := a.ref(r, resource) + "?limit=" + strconv.Itoa(p.Limit) + "&offset=" + strconv.Itoa(offset)
		if extra != "" {
			s += "&" + extra
		}
		return s
	}
	if p.Offset > 0 {
		previous = link(max(0, p.Offset-p.Limit))
	}
	if total > p.Offset+p.Limit {
		next = link(p.Offset + p.Limit)
	}
	return previous, next
}

// queryWithout re-encodes a raw query without the named parameters,
// keeping the client's order (repeated keys grouped at their first
// occurrence, as Python's urlencode(doseq=True) of the request's
// parameters does).
func queryWithout(raw string, drop ...string) string {
	var keys []string
	vals := map[string][]string{}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || k == "" || slices.Contains(drop, k) {
			continue
		}
		if _, seen := vals[k]; !seen {
			keys = append(keys, k)
		}
		vals[k] = append(vals[k], v)
	}
	var b strings.Builder
	for _, k := range keys {
		for _, v := range vals[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}
