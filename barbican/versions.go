package barbican

import (
	"net/http"
)

// Version discovery: GET / (300 Multiple Choices) and GET /v1, public.
// At 1.0 (or without a microversion header) the documents keep the
// pre-microversion shape that old clients know; from 1.1 they carry
// min_version/max_version, which python-barbicanclient reads to pick its
// microversion.

type versionLink struct {
	Rel  string `json:"rel"`
	Type string `json:"type,omitempty"`
	Href string `json:"href"`
}

type versionMediaType struct {
	Base string `json:"base"`
	Type string `json:"type"`
}

// versionInfo is one version; MinVersion/MaxVersion from 1.1, MediaTypes
// only at 1.0.
type versionInfo struct {
	ID         string             `json:"id"`
	Status     string             `json:"status"`
	MinVersion string             `json:"min_version,omitempty"`
	MaxVersion string             `json:"max_version,omitempty"`
	Links      []versionLink      `json:"links"`
	MediaTypes []versionMediaType `json:"media-types,omitempty"`
}

func (a *api) v1Info(r *http.Request) versionInfo {
	v := versionInfo{
		ID: "v1",
		Links: []versionLink{
			{Rel: "self", Href: a.baseURL(r) + "/v1/"},
			{Rel: "describedby", Type: "text/html", Href: "https://docs.openstack.org/"},
		},
	}
	if microversionOf(r) < discoveryMicroversion {
		v.Status = "stable"
		v.MediaTypes = []versionMediaType{{Base: "application/json", Type: "application/vnd.openstack.key-manager-v1+json"}}
	} else {
		v.Status = "CURRENT"
		v.MinVersion, v.MaxVersion = minMicroversion.String(), maxMicroversion.String()
	}
	return v
}

func (a *api) listVersions(w http.ResponseWriter, r *http.Request) {
	info := a.v1Info(r)
	if microversionOf(r) < discoveryMicroversion {
		type values struct {
			Values []versionInfo `json:"values"`
		}
		writeJSON(w, http.StatusMultipleChoices, struct {
			Versions values `json:"versions"`
		}{values{[]versionInfo{info}}})
		return
	}
	writeJSON(w, http.StatusMultipleChoices, struct {
		Versions []versionInfo `json:"versions"`
	}{[]versionInfo{info}})
}

func (a *api) getVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Version versionInfo `json:"version"`
	}{a.v1Info(r)})
}
