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

// RouteLabel names the route of a request path with its identifiers
// replaced ("/v1/secrets/{id}/payload"), so that metrics have one series per
// route and never carry an id; a path outside the API is "other". It runs on
// every request, so it returns constants and allocates nothing.
func RouteLabel(path string) string {
	path = strings.TrimRight(path, "/")
	if path == "" {
		return "/"
	}
	var seg [5]string
	n := 0
	for rest := path[1:]; ; n++ {
		if n == len(seg) {
			return "other"
		}
		var more bool
		seg[n], rest, more = strings.Cut(rest, "/")
		if !more {
			n++
			break
		}
	}
	if seg[0] != "v1" {
		return "other"
	}
	switch n {
	case 1:
		return "/v1"
	case 2:
		switch seg[1] {
		case "secrets":
			return "/v1/secrets"
		case "orders":
			return "/v1/orders"
		case "orphans":
			return "/v1/orphans"
		case "quotas":
			return "/v1/quotas"
		case "project-quotas":
			return "/v1/project-quotas"
		case "containers":
			return "/v1/containers"
		}
	case 3:
		switch seg[1] {
		case "secrets":
			return "/v1/secrets/{id}"
		case "orders":
			return "/v1/orders/{id}"
		case "project-quotas":
			return "/v1/project-quotas/{id}"
		case "containers":
			return "/v1/containers/{id}"
		}
	case 4:
		if seg[1] == "containers" {
			switch seg[3] {
			case "consumers":
				return "/v1/containers/{id}/consumers"
			case "secrets":
				return "/v1/containers/{id}/secrets"
			case "acl":
				return "/v1/containers/{id}/acl"
			}
			return "other"
		}
		if seg[1] != "secrets" {
			return "other"
		}
		switch seg[3] {
		case "payload":
			return "/v1/secrets/{id}/payload"
		case "metadata":
			return "/v1/secrets/{id}/metadata"
		case "acl":
			return "/v1/secrets/{id}/acl"
		case "consumers":
			return "/v1/secrets/{id}/consumers"
		case "clone":
			return "/v1/secrets/{id}/clone"
		case "lifecycle":
			return "/v1/secrets/{id}/lifecycle"
		}
	case 5:
		if seg[1] == "secrets" && seg[3] == "metadata" {
			return "/v1/secrets/{id}/metadata/{key}"
		}
	}
	return "other"
}
