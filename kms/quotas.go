package kms

import (
	"slices"
	"strings"
	"time"
)

// Quotas, as Barbican has them: how many secrets, orders, containers and
// consumers one project may hold. Config.Quotas is the default of every
// project; a service admin may configure a project's own values, which win
// kind by kind. A negative value (-1) is unlimited, 0 disables the kind, N
// allows N. Barbican also has CA quotas; they are kept and shown, but this
// server has no CAs to bound.
//
// Store layout: q/<project> holds a project's configured quotas (keys.go).
//
// What is counted, per project: secrets are the records under
// p/<project>/ (expired secrets and destroyed KMIP objects count until they
// are deleted, as Barbican counts expired secrets until they are purged);
// orders the records under o/<project>/; containers those under
// c/<project>/ (containers.go); consumers the consumers registered on the
// project's secrets and containers. The last differs from Barbican, which
// charges a consumer to the project that registers it: here consumers
// live inside their secret's (container's) record, so its owner is charged
// (Cinder adding a consumer with a service token uses the volume owner's
// quota, not the service project's).
//
// How creates are counted and held, and how exact that is: quota_engine.go.

// QuotaKind names a resource a quota bounds, as Barbican names it.
type QuotaKind string

const (
	QuotaSecrets    QuotaKind = "secrets"
	QuotaOrders     QuotaKind = "orders"
	QuotaContainers QuotaKind = "containers"
	QuotaConsumers  QuotaKind = "consumers"
	QuotaCAs        QuotaKind = "cas"
)

// QuotaKinds are every kind, in Barbican's order.
var QuotaKinds = []QuotaKind{QuotaSecrets, QuotaOrders, QuotaContainers, QuotaConsumers, QuotaCAs}

// Unlimited is the quota without a bound; any negative value means it.
const Unlimited = -1

// Quotas maps kinds to limits. In Config.Quotas an absent kind is
// Unlimited; in a project's configuration an absent kind follows the
// default.
type Quotas map[QuotaKind]int

// Validate checks that every kind is one of QuotaKinds.
func (q Quotas) Validate() error {
	_, err := q.normalize()
	return err
}

// validQuotaKind reports whether k is one of QuotaKinds.
func validQuotaKind(k QuotaKind) bool { return slices.Contains(QuotaKinds, k) }

// normalize checks the kinds and maps every negative value to Unlimited.
func (q Quotas) normalize() (Quotas, error) {
	out := make(Quotas, len(q))
	for k, v := range q {
		if !validQuotaKind(k) {
			return nil, Invalid("unknown quota kind %q: use %s", k, quotaKindList())
		}
		out[k] = max(v, Unlimited)
	}
	return out, nil
}

func quotaKindList() string {
	s := make([]string, len(QuotaKinds))
	for i, k := range QuotaKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// ProjectQuotas is a project's configured quotas.
type ProjectQuotas struct {
	Project string    `json:"project"`
	Quotas  Quotas    `json:"quotas"` // configured kinds only; the others follow the defaults
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}
