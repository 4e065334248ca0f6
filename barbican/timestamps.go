package barbican

import "time"

// Timestamps are naive UTC ISO 8601 with microseconds and no zone suffix,
// as Python's datetime.isoformat() prints Barbican's database times
// ("2015-04-07T03:37:19.805835"); gophercloud cannot parse a "Z".
const timeLayout = "2006-01-02T15:04:05.000000"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// formatTimePtr is nil (JSON null) for an absent time.
func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

// isoLayouts are the ISO 8601 forms accepted in requests (oslo's
// parse_isotime): date only, minutes or seconds, any fraction, and a zone
// of Z, ±hh:mm, ±hhmm or ±hh; a time without a zone is UTC.
var isoLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05-07",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04-0700",
	"2006-01-02T15:04-07",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseISOTime parses an ISO 8601 timestamp into UTC.
func parseISOTime(s string) (time.Time, bool) {
	b := []byte(s)
	if len(b) > 10 && b[10] == ' ' {
		b[10] = 'T'
	}
	for i, c := range b {
		switch {
		case c == ',':
			b[i] = '.' // decimal comma
		case c == 't' || c == 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	s = string(b)
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
