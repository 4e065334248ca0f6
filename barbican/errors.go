package barbican

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/keywarden/keywarden/kms"
)

// errorBody is Barbican's error document: the HTTP status, its reason
// phrase and a description safe to show the caller.
type errorBody struct {
	Code        int    `json:"code"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

// httpError is a refusal that only exists on the wire and has no kms kind
// (405, 406, 415). Everything else flows through kms errors.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func statusError(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps a kms error kind to its HTTP status.
var statusOf = map[kms.Kind]int{
	kms.KindInvalid:         http.StatusBadRequest,
	kms.KindNotFound:        http.StatusNotFound,
	kms.KindForbidden:       http.StatusForbidden,
	kms.KindConflict:        http.StatusConflict,
	kms.KindTooLarge:        http.StatusRequestEntityTooLarge,
	kms.KindUnauthenticated: http.StatusUnauthorized,
	kms.KindUnavailable:     http.StatusServiceUnavailable,
	kms.KindSingleValued:    http.StatusConflict,
	kms.KindNoAttribute:     http.StatusNotFound,
	kms.KindNoInstance:      http.StatusNotFound,
	kms.KindWrongState:      http.StatusConflict,
	kms.KindReadOnly:        http.StatusConflict,
	kms.KindMultiValued:     http.StatusConflict,
	kms.KindUsage:           http.StatusForbidden,
	kms.KindSensitive:       http.StatusForbidden,
	kms.KindNotExtractable:  http.StatusForbidden,
	kms.KindCryptoFailure:   http.StatusBadRequest,
	kms.KindInternal:        http.StatusInternalServerError,
}

// internalDescription is all a caller learns about a fault of ours.
const internalDescription = "The server failed to process the request; please contact the site administrator."

// fail answers err as a Barbican error body. Internal errors are logged with
// their cause (kms causes never hold key material) and shown generically.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, desc := http.StatusInternalServerError, internalDescription
	var he *httpError
	var ke *kms.Error
	switch {
	case errors.As(err, &he):
		status, desc = he.status, he.msg
	case errors.As(err, &ke) && ke.Kind != kms.KindInternal:
		if s, ok := statusOf[ke.Kind]; ok {
			status, desc = s, ke.Msg
		}
		if ke.Field != "" { // Barbican's words for a schema refusal
			desc = fmt.Sprintf("Provided object does not match schema '%s': %s. Invalid property: '%s'", ke.Object, ke.Msg, ke.Field)
		}
	}
	rid := w.Header().Get("X-Openstack-Request-Id")
	if status >= 500 {
		a.log.Error("barbican: request failed", "request_id", rid,
			"method", r.Method, "path", r.URL.Path, "error", err.Error(), "cause", causeOf(err))
	} else if a.log.Enabled(r.Context(), slog.LevelDebug) {
		a.log.Debug("barbican: request refused", "request_id", rid,
			"method", r.Method, "path", r.URL.Path, "status", status, "error", desc)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keywarden"`)
	}
	writeJSON(w, status, errorBody{Code: status, Title: http.StatusText(status), Description: desc})
}

func causeOf(err error) string {
	if c := errors.Unwrap(err); c != nil {
		return c.Error()
	}
	return ""
}
