package kms

import (
	"net/url"
	"strconv"
	"strings"
)

// Store key layout. A secret's record lives under its project so that
// listing one project reads only that project; a pointer maps id → project.
// Containers and orders are laid out the same way.
//
//	s/<id>                     → project                    secret pointer
//	p/<project>/<id>           → secret record: CBOR + tag (JSON + tag before session 5; both read)
//	k/<project>                → wrapped project KEK
//	a/<source>/<user>/<id>     → project                    ACL index (acl_only listing: secrets shared with user of source)
//	cp/<id>, c/<project>/<id>  → container pointer, container JSON + tag (secret refs, consumers, ACL; no key material)
//	op/<id>, o/<project>/<id>  → order pointer, order JSON
//	q/<project>                → project quotas JSON
//	l/<project>/<created>/<id> → secret summary            list index, plain entries (listindex.go)
//	lx/<project>/<created>/<id>→ secret summary            list index, set aside: destroyed, expiring, private, ACL users
//	n/<project>                → counter (8 bytes)          number of l/ entries, kept by store Add ops
//	n1/ n2/ n3/<project>/<window> → counter                 l/ entries per creation-time window (fences)
//	ln/<project>/<name*>/<id>  → created (16 hex)          plain entries by name (*: escaped, listNameKey)
//	nv/<project>/<alg>/<mode>/<type>/<bits> → counter       plain entries with those values (not on etcd)
//	m/list-index               → "1"                        every record has its list index entry
//	m/list-index-2             → "1"                        ... and its ln/ entry and nv/ count
//
// Projects (and ACL sources and users) are escaped in keys, so one
// project's prefix never covers another's.

func pointerKey(id string) string { return "s/" + id }

// recordsPrefix is the prefix of every project's secret records.
func recordsPrefix() string { return "p/" }
func projectPrefix(project string) string {
	return recordsPrefix() + url.PathEscape(project) + "/"
}
func recordKey(project, id string) string { return projectPrefix(project) + id }

// splitRecordKey is recordKey's inverse.
func splitRecordKey(key string) (project, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, recordsPrefix())
	if !ok {
		return "", "", false
	}
	esc, id, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", false
	}
	project, err := url.PathUnescape(esc)
	return project, id, err == nil
}

// kekPrefix is the prefix of every project's KEK.
func kekPrefix() string            { return "k/" }
func kekKey(project string) string { return kekPrefix() + url.PathEscape(project) }

// kekProject is kekKey's inverse.
func kekProject(key string) (string, error) {
	return url.PathUnescape(strings.TrimPrefix(key, kekPrefix()))
}

func aclUserPrefix(source, user string) string {
	return "a/" + url.PathEscape(source) + "/" + url.PathEscape(user) + "/"
}

func containerPointerKey(id string) string { return "cp/" + id }
func containerPrefix(project string) string {
	return "c/" + url.PathEscape(project) + "/"
}
func containerKey(project, id string) string { return containerPrefix(project) + id }

func orderPointerKey(id string) string { return "op/" + id }
func orderPrefix(project string) string {
	return "o/" + url.PathEscape(project) + "/"
}
func orderKey(project, id string) string { return orderPrefix(project) + id }

func quotaPrefix() string            { return "q/" }
func quotaKey(project string) string { return quotaPrefix() + url.PathEscape(project) }

// quotaProject is the project of a quota key.
func quotaProject(key string) string {
	p, _ := url.PathUnescape(strings.TrimPrefix(key, quotaPrefix()))
	return p
}

// The list index (listindex.go tells how it is used).

func listPrefix(project string) string      { return "l/" + url.PathEscape(project) + "/" }
func listAsidePrefix(project string) string { return "lx/" + url.PathEscape(project) + "/" }
func listCountKey(project string) string    { return "n/" + url.PathEscape(project) }

// Fences: counts of plain entries per window of creation time, at three
// widths (a prefix of 4, 7 and 9 of the 16 hex digits: windows of 2^48 ns
// ≈ 78 h, 2^36 ns ≈ 69 s and 2^28 ns ≈ 268 ms). Finding position p reads
// the counts of the wide windows, then of the narrower ones inside the
// window that holds p, and skips keys only inside a 268 ms window; deletes
// anywhere move the counts, not the method. Kept by Add ops like n/.
var fenceDigits = [...]int{4, 7, 9}

// fenceNames are the fences' key heads, level by level.
var fenceNames = [...]string{"n1/", "n2/", "n3/"}

func fencePrefix(level int, project string) string {
	return "n" + strconv.Itoa(level+1) + "/" + url.PathEscape(project) + "/"
}

const (
	listIndexMarker  = "m/list-index"
	listIndexMarker2 = "m/list-index-2"
)

// listNamePrefix holds the plain entries in Barbican's name order (name,
// then id, both ascending): the name with each 0x00 as 0x00 0x01, then
// 0x00 0x00, then the id. That keeps byte order and ends the name part
// unambiguously, so a group of one name is a key prefix.
func listNamePrefix(project string) string { return "ln/" + url.PathEscape(project) + "/" }

func listNameSuffix(name, id string) string {
	return strings.ReplaceAll(name, "\x00", "\x00\x01") + "\x00\x00" + id
}

// nameGroupLen is the length of a listNameSuffix's name part, terminator
// included (0 if it has none).
func nameGroupLen(suffix []byte) int {
	for i := 0; i+1 < len(suffix); i++ {
		if suffix[i] == 0 {
			if suffix[i+1] == 0 {
				return i + 2
			}
			i++ // an escaped 0x00
		}
	}
	return 0
}

// listValuesPrefix holds, per combination of the values lists filter on
// by equality or substring, the count of the project's plain entries that
// have it: few keys, and a filter's total is their sum.
func listValuesPrefix(project string) string { return "nv/" + url.PathEscape(project) + "/" }

func listValuesKey(sec *Secret) string {
	return listValuesPrefix(sec.Project) + url.PathEscape(sec.Algorithm) + "/" + url.PathEscape(sec.Mode) + "/" +
		url.PathEscape(string(sec.Type)) + "/" + strconv.Itoa(sec.BitLength)
}
