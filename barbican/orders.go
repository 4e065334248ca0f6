package barbican

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms"
)

// Orders: /v1/orders and /v1/orders/{id}, as castellan uses them: POST
// answers 202 {order_ref}; the order is ACTIVE at once with its secret_ref;
// its creator deletes it. Beyond Barbican's key order, meta may carry our
// per-disk extension ("consumer", "encryption", "deletion_policy",
// "metadata", "passphrase") and type may be "passphrase". Those never show
// on these paths: an order's meta is rendered with Barbican's six keys only
// (python-barbicanclient refuses any other), and listings leave out orders
// of types Barbican does not know unless ?type= asks for them.

// orderMeta is Barbican's key order meta; absent values are null.
type orderMeta struct {
	Name               *string `json:"name"`
	Algorithm          *string `json:"algorithm"`
	BitLength          *int    `json:"bit_length"`
	Mode               *string `json:"mode"`
	Expiration         *string `json:"expiration"`
	PayloadContentType *string `json:"payload_content_type"`
}

type orderBody struct {
	Created          string    `json:"created"`
	CreatorID        *string   `json:"creator_id"`
	Meta             orderMeta `json:"meta"`
	OrderRef         string    `json:"order_ref"`
	SecretRef        string    `json:"secret_ref,omitempty"`
	ContainerRef     string    `json:"container_ref,omitempty"` // asymmetric orders
	Status           string    `json:"status"`
	SubStatus        string    `json:"sub_status"`
	SubStatusMessage string    `json:"sub_status_message"`
	Type             string    `json:"type"`
	Updated          string    `json:"updated"`
}

type orderRefBody struct {
	OrderRef string `json:"order_ref"`
}

type orderList struct {
	Orders   []orderBody `json:"orders"`
	Previous string      `json:"previous,omitempty"`
	Next     string      `json:"next,omitempty"`
	Total    int         `json:"total"`
}

func (a *api) orderBody(r *http.Request, o *kms.Order) orderBody {
	q := o.Request
	b := orderBody{
		Created: formatTime(o.Created), Updated: formatTime(o.Updated), CreatorID: optString(o.Creator),
		Meta: orderMeta{
			Name: optString(q.Name), Algorithm: optString(q.Algorithm), BitLength: optInt(q.BitLength),
			Mode: optString(q.Mode), Expiration: formatTimePtr(q.Expiration),
			PayloadContentType: optString(q.ContentType),
		},
		OrderRef: a.ref(r, "orders", o.ID),
		Status:   o.Status, SubStatus: "Unknown", SubStatusMessage: "Unknown", Type: string(o.Type),
	}
	if o.ContainerID != "" {
		b.ContainerRef = a.ref(r, "containers", o.ContainerID)
	} else {
		b.SecretRef = a.secretRef(r, o.SecretID)
	}
	return b
}

func orderID(r *http.Request) (string, error) { return pathUUID(r, "id", "order") }

func (a *api) createOrder(w http.ResponseWriter, r *http.Request) {
	obj, body, err := readJSONObject(r)
	defer crypto.Zero(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	req, err := orderRequest(obj)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.svc.CreateOrder(r.Context(), identity(r), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ref := a.ref(r, "orders", o.ID)
	w.Header().Set("Location", ref)
	writeJSON(w, http.StatusAccepted, orderRefBody{OrderRef: ref})
}

// orderRequest translates an order body. Empty strings and a zero
// bit_length count as absent: gophercloud sends them for unset fields.
func orderRequest(obj map[string]json.RawMessage) (kms.OrderRequest, error) {
	var req kms.OrderRequest
	typ, ok, err := jsonString(obj, "type")
	if err != nil {
		return req, err
	}
	if !ok || strings.TrimSpace(typ) == "" {
		return req, kms.Invalid("'type' is a required property")
	}
	req.Type = kms.OrderType(strings.ToLower(strings.TrimSpace(typ)))
	meta, ok, err := jsonObject(obj, "meta")
	if err != nil {
		return req, err
	}
	if !ok {
		return req, kms.Invalid("'meta' is a required property")
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"name", &req.Name}, {"algorithm", &req.Algorithm}, {"mode", &req.Mode}, {"payload_content_type", &req.ContentType}} {
		s, _, err := jsonString(meta, f.key)
		if err != nil {
			return req, err
		}
		*f.dst = strings.TrimSpace(s)
	}
	if req.BitLength, _, err = jsonInt(meta, "bit_length"); err != nil {
		return req, err
	}
	if req.BitLength < 0 {
		return req, kms.Invalid("bit_length must be a positive integer")
	}
	if exp, _, err := jsonString(meta, "expiration"); err != nil {
		return req, err
	} else if exp = strings.TrimSpace(exp); exp != "" {
		t, ok := parseISOTime(exp)
		if !ok {
			return req, kms.Invalid("Invalid date for 'expiration'")
		}
		req.Expiration = &t
	}
	if ct := req.ContentType; ct != "" {
		want := kms.ContentTypeBinary
		if req.Type == kms.OrderPassphrase {
			want = kms.ContentTypeText
		}
		if normalizeContentType(ct) != want {
			return req, kms.Invalid("payload_content_type %q is not supported for a %s order: use %s", ct, req.Type, want)
		}
	}
	if pp, _, err := jsonString(meta, "pass_phrase"); err != nil {
		return req, err
	} else if pp != "" {
		if req.Type != kms.OrderAsymmetric {
			return req, kms.Invalid("pass_phrase applies to asymmetric orders only")
		}
		req.PassPhrase = []byte(pp)
	}
	return req, diskExtension(meta, &req)
}

// diskExtension reads our per-disk members of an order's meta.
func diskExtension(meta map[string]json.RawMessage, req *kms.OrderRequest) error {
	if c, ok, err := jsonObject(meta, "consumer"); err != nil {
		return err
	} else if ok {
		consumer, err := consumerOf(c, "consumer.")
		if err != nil {
			return err
		}
		req.Consumer = &consumer
	}
	if e, ok, err := jsonObject(meta, "encryption"); err != nil {
		return err
	} else if ok {
		enc, err := encryptionOf(e)
		if err != nil {
			return err
		}
		req.Encryption = &enc
	}
	p, _, err := jsonString(meta, "deletion_policy")
	if err != nil {
		return err
	}
	req.DeletionPolicy = kms.DeletionPolicy(p)
	if req.Metadata, err = stringMap(meta, "metadata"); err != nil {
		return err
	}
	if pp, ok, err := jsonObject(meta, "passphrase"); err != nil {
		return err
	} else if ok {
		var pol crypto.PassphrasePolicy
		if pol.Length, _, err = jsonInt(pp, "length"); err != nil {
			return err
		}
		if pol.Alphabet, _, err = jsonString(pp, "alphabet"); err != nil {
			return err
		}
		req.Passphrase = &pol
	}
	return nil
}

// encryptionOf reads {"format", "cipher", "key_size"}.
func encryptionOf(e map[string]json.RawMessage) (kms.DiskEncryption, error) {
	var enc kms.DiskEncryption
	var err error
	if enc.Format, _, err = jsonString(e, "format"); err != nil {
		return enc, err
	}
	if enc.Cipher, _, err = jsonString(e, "cipher"); err != nil {
		return enc, err
	}
	if enc.KeySize, _, err = jsonInt(e, "key_size"); err != nil {
		return enc, err
	}
	return enc, nil
}

// stringMap reads an object of string values (nil when absent).
func stringMap(obj map[string]json.RawMessage, key string) (map[string]string, error) {
	raw, ok, err := jsonObject(obj, key)
	if err != nil || !ok {
		return nil, err
	}
	m := make(map[string]string, len(raw))
	for k := range raw {
		v, _, err := jsonString(raw, k)
		if err != nil {
			return nil, kms.Invalid("'%s.%s' must be a string", key, k)
		}
		m[k] = v
	}
	return m, nil
}

func (a *api) getOrder(w http.ResponseWriter, r *http.Request) {
	id, err := orderID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.svc.GetOrder(r.Context(), identity(r), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.orderBody(r, o))
}

func (a *api) listOrders(w http.ResponseWriter, r *http.Request) {
	p := parsePage(r)
	q := kms.OrderQuery{Offset: p.Offset, Limit: p.Limit, Types: kms.BarbicanOrderTypes}
	if t := strings.TrimSpace(r.URL.Query().Get("type")); t != "" {
		q.Types = []kms.OrderType{kms.OrderType(strings.ToLower(t))}
	}
	orders, total, err := a.svc.ListOrders(r.Context(), identity(r), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := orderList{Orders: make([]orderBody, 0, len(orders)), Total: total}
	for _, o := range orders {
		out.Orders = append(out.Orders, a.orderBody(r, o))
	}
	out.Previous, out.Next = a.pageLinks(r, "orders", p, total)
	writeJSON(w, http.StatusOK, out)
}

func (a *api) deleteOrder(w http.ResponseWriter, r *http.Request) {
	id, err := orderID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.svc.DeleteOrder(r.Context(), identity(r), id); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
