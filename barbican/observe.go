package barbican

import (
	"net/http"
	"strings"
)

// statusWriter remembers the status a handler answered with, for Observe.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// routeSegments are the literal path segments of the API; an identifier
// follows the collections in idAfter, a metadata key follows "metadata".
var (
	routeSegments = map[string]bool{
		"v1": true, "secrets": true, "payload": true, "metadata": true, "acl": true, "consumers": true,
		"clone": true, "lifecycle": true, "orders": true, "orphans": true, "quotas": true,
		"project-quotas": true, "containers": true,
	}
	idAfter = map[string]bool{"secrets": true, "orders": true, "project-quotas": true, "containers": true}
)

// RouteLabel names the route of a request path with its identifiers
// replaced ("/v1/secrets/{id}/payload"), so that metrics have one series per
// route and never carry an id; a path outside the API is "other".
func RouteLabel(path string) string {
	path = strings.TrimRight(path, "/")
	if path == "" {
		return "/"
	}
	var b strings.Builder
	prev := ""
	n := 0
	for seg := range strings.SplitSeq(path[1:], "/") {
		if n++; n > 5 {
			return "other"
		}
		switch {
		case idAfter[prev]:
			seg = "{id}"
		case prev == "metadata":
			seg = "{key}"
		case !routeSegments[seg]:
			return "other"
		}
		b.WriteByte('/')
		b.WriteString(seg)
		prev = seg
	}
	return b.String()
}
