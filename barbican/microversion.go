package barbican

import (
	"net/http"
	"strconv"
	"strings"
)

// Microversions, as Barbican negotiates them (microversion_parse):
// "OpenStack-API-Version: key-manager X.Y" or "key-manager latest"; no
// header (or none for key-manager) means the minimum, 1.0. A malformed
// version is 400, one we do not serve is 406. The chosen version is echoed
// with Vary, so caches keep the shapes apart.

// microversion is the minor number of key-manager 1.x.
type microversion int

const (
	minMicroversion microversion = 0
	maxMicroversion microversion = 2

	// discoveryMicroversion gives the version documents their
	// microversion shape (status CURRENT, min_version, max_version).
	discoveryMicroversion microversion = 1
	// consumersMicroversion adds "consumers" to secrets (GET and list).
	consumersMicroversion microversion = 1
	// forceDeleteMicroversion honours ?force= on DELETE of a secret in use.
	forceDeleteMicroversion microversion = 2
)

const (
	microversionHeader = "OpenStack-API-Version"
	serviceType        = "key-manager"
)

func (v microversion) String() string { return "1." + strconv.Itoa(int(v)) }

// Response header values, built once. They are shared by every response:
// net/http only reads them, and an Add to the header appends to a full
// slice, which copies it.
var (
	microversionHeaderKey = http.CanonicalHeaderKey(microversionHeader)
	microversionEcho      = func() (echo [maxMicroversion + 1][]string) {
		for v := minMicroversion; v <= maxMicroversion; v++ {
			echo[v] = []string{serviceType + " " + v.String()}
		}
		return echo
	}()
	varyMicroversion = []string{microversionHeader}
)

// microversionOf is the version negotiated for r (1.0 outside negotiate).
func microversionOf(r *http.Request) microversion {
	if st, ok := r.Context().Value(reqStateKey).(*reqState); ok {
		return st.microversion
	}
	return minMicroversion
}

// parseMicroversion picks the key-manager entry of the header values (the
// last one wins, as with folded headers) and checks it.
func parseMicroversion(values []string) (microversion, error) {
	var found string
	for _, line := range values {
		for entry := range strings.SplitSeq(line, ",") {
			fields := strings.Fields(entry)
			if len(fields) >= 2 && strings.EqualFold(fields[0], serviceType) {
				found = strings.Join(fields[1:], " ")
			}
		}
	}
	switch found {
	case "":
		return minMicroversion, nil
	case "latest":
		return maxMicroversion, nil
	}
	majorS, minorS, ok := strings.Cut(found, ".")
	major, err1 := strconv.Atoi(strings.TrimSpace(majorS))
	minor, err2 := strconv.Atoi(strings.TrimSpace(minorS))
	if !ok || err1 != nil || err2 != nil {
		return 0, statusError(http.StatusBadRequest, "Invalid microversion: invalid version string: %s", found)
	}
	if major != 1 || minor < int(minMicroversion) || minor > int(maxMicroversion) {
		return 0, statusError(http.StatusNotAcceptable,
			"Invalid microversion: Unacceptable version header: %s (this server supports %s to %s)",
			found, minMicroversion, maxMicroversion)
	}
	return microversion(minor), nil
}

// negotiate resolves the microversion of a request, answers 400/406 when
// it cannot, and echoes the chosen one.
func (a *api) negotiate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := parseMicroversion(r.Header[microversionHeaderKey])
		if err != nil {
			a.fail(w, r, err)
			return
		}
		h := w.Header()
		h[microversionHeaderKey] = microversionEcho[v]
		if _, ok := h["Vary"]; ok {
			h.Add("Vary", microversionHeader)
		} else {
			h["Vary"] = varyMicroversion
		}
		st, r := stateOf(r)
		st.microversion = v
		next.ServeHTTP(w, r)
	})
}
