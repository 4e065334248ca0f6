package kms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/keywarden/keywarden/crypto"
	"github.com/keywarden/keywarden/kms/store"
)

// Orders are Barbican's way to have the server generate a secret; castellan
// (Nova, Cinder) creates keys this way: POST an order, poll it until
// ACTIVE, read its secret_ref, delete the order. Orders are fulfilled at
// once, so an order is ACTIVE from the start, and the order and its secret
// are written in one transaction.
//
// Store layout: keys.go.

// OrderType is what an order generates.
type OrderType string

const (
	// OrderKey is Barbican's symmetric key order.
	OrderKey OrderType = "key"
	// OrderPassphrase is ours: a generated passphrase (the secret of a
	// LUKS disk in Nova and CloudStack).
	OrderPassphrase OrderType = "passphrase"
)

// BarbicanOrderTypes are the types Barbican itself knows; clients that only
// know these must not be shown others.
var BarbicanOrderTypes = []OrderType{OrderKey, "asymmetric", "certificate"}

// OrderStatus is ACTIVE once the secret exists (always, here).
const OrderStatusActive = "ACTIVE"

// OrderRequest is what an order asks for: Barbican's key order meta, and
// our per-disk extension (a Consumer makes it a disk secret, registered in
// the same write).
type OrderRequest struct {
	Type        OrderType
	Name        string
	Algorithm   string
	BitLength   int
	Mode        string
	ContentType string // payload_content_type; informational
	Expiration  *time.Time

	Consumer       *Consumer
	Encryption     *DiskEncryption
	DeletionPolicy DeletionPolicy
	Metadata       map[string]string
	Passphrase     *crypto.PassphrasePolicy

	// PassPhrase is an asymmetric order's pass_phrase (Barbican's): it
	// becomes the container's third secret. Never stored in the order.
	PassPhrase []byte `json:"-"`
}

// Order is a stored order.
type Order struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	Creator string `json:"creator"`

	CreatorSource string `json:"creator_source,omitempty"` // as Secret's

	Type     OrderType    `json:"type"`
	Status   string       `json:"status"`
	SecretID string       `json:"secret_id"`
	Created  time.Time    `json:"created"`
	Updated  time.Time    `json:"updated"`
	Request  OrderRequest `json:"request"`

	// ContainerID is the rsa container of an asymmetric order (SecretID
	// is then empty).
	ContainerID string `json:"container_id,omitempty"`
}

// Extended reports whether the order uses anything Barbican does not have:
// such orders are hidden from clients that only know Barbican's shapes.
func (o *Order) Extended() bool {
	r := o.Request
	return !slices.Contains(BarbicanOrderTypes, o.Type) || r.Consumer != nil || r.Encryption != nil ||
		(r.DeletionPolicy != "" && r.DeletionPolicy != Retain) || len(r.Metadata) > 0 || r.Passphrase != nil
}

// CreateOrder generates the ordered secret and records the order, both in
// one transaction. Invalid orders are refused outright (400) rather than
// stored in an ERROR state: nothing here can fail later.
func (s *Service) CreateOrder(ctx context.Context, who Identity, req OrderRequest) (o *Order, err error) {
	ctx = s.begin(ctx, who, "order_create")
	var sec *record
	defer func() {
		id := ""
		if sec != nil {
			id = sec.ID
		}
		s.record(ctx, who, "order_create", id, err)
	}()
	if err := who.Validate(); err != nil {
		return nil, err
	}
	if err := s.allowProject(OrderCreate, who); err != nil {
		return nil, err
	}
	var typ SecretType
	switch req.Type {
	case OrderKey:
		typ = Symmetric
	case OrderPassphrase:
		typ = Passphrase
	case OrderAsymmetric:
		return s.createAsymmetricOrder(ctx, who, req)
	case "certificate":
		return nil, Invalid("order type %q is not supported by this server", req.Type)
	default:
		return nil, Invalid("unknown order type %q", req.Type)
	}
	if typ == Symmetric && req.Algorithm != "" && !strings.EqualFold(req.Algorithm, "aes") {
		return nil, Invalid("only aes keys can be ordered, not %q", req.Algorithm)
	}
	// The quota first: a refused order must not leave a project key behind.
	consumers := 0
	if req.Consumer != nil {
		consumers = 1
	}
	hold, err := s.holdQuota(ctx, who.Project, usage{qSecrets: 1, qOrders: 1, qConsumers: consumers})
	if err != nil {
		return nil, err
	}
	defer func() { hold.release(err == nil) }()
	if req.Consumer != nil {
		enc := DiskEncryption{}
		if req.Encryption != nil {
			enc = *req.Encryption
		}
		if enc.Cipher == "" && req.Mode != "" && typ == Symmetric {
			enc.Cipher = "aes-" + strings.ToLower(req.Mode) + "-plain64"
		}
		p, err := s.planDisk(who, DiskSecretRequest{
			Disk: *req.Consumer, Type: typ, Encryption: enc, BitLength: req.BitLength,
			Name: req.Name, Metadata: req.Metadata, DeletionPolicy: req.DeletionPolicy,
			Expiration: req.Expiration, Passphrase: req.Passphrase,
		})
		if err != nil {
			return nil, err
		}
		if sec, err = s.buildDisk(ctx, who, p); err != nil {
			return nil, err
		}
	} else {
		if sec, err = s.buildGenerated(ctx, who, typ, req); err != nil {
			return nil, err
		}
	}
	now := s.clock()
	o = &Order{
		ID: uuid.NewString(), Project: who.Project, Creator: who.User, CreatorSource: who.Source, Type: req.Type,
		Status: OrderStatusActive, SecretID: sec.ID, Created: now, Updated: now, Request: req,
	}
	o.Request.Passphrase = nil // a policy is no business of the order's readers
	b, err := json.Marshal(o)
	if err != nil {
		return nil, internal("encode", err)
	}
	err = s.insert(ctx, sec,
		store.Put(orderKey(o.Project, o.ID), b), store.Put(orderPointerKey(o.ID), []byte(o.Project)))
	if err != nil {
		return nil, err
	}
	return o, nil
}

// buildGenerated is a plain generated secret (no disk), as Barbican's key
// order makes it.
func (s *Service) buildGenerated(ctx context.Context, who Identity, typ SecretType, req OrderRequest) (*record, error) {
	cr := CreateRequest{
		Name: req.Name, Type: typ, Algorithm: req.Algorithm, BitLength: req.BitLength, Mode: req.Mode,
		Expiration: req.Expiration, Metadata: req.Metadata, DeletionPolicy: req.DeletionPolicy,
		Encryption: req.Encryption,
	}
	if typ == Symmetric {
		if cr.BitLength == 0 {
			return nil, Invalid("bit_length is required for a key order")
		}
		cr.Algorithm = strings.ToLower(cr.Algorithm)
		if cr.Algorithm == "" {
			cr.Algorithm = "aes"
		}
	}
	material, err := s.generateMaterial(&cr, req.Passphrase)
	if err != nil {
		return nil, err
	}
	defer crypto.Zero(material)
	if err := s.validateCreate(&cr); err != nil {
		return nil, err
	}
	cr.Payload = material
	return s.newRecord(ctx, who, who.Project, cr)
}

func (s *Service) loadOrder(ctx context.Context, id string) (*Order, int64, error) {
	kv, err := s.st.Get(ctx, orderPointerKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, NotFound("Order not found.")
	} else if err != nil {
		return nil, 0, internal("read", err)
	}
	kv, err = s.st.Get(ctx, orderKey(string(kv.Value), id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, NotFound("Order not found.")
	} else if err != nil {
		return nil, 0, internal("read", err)
	}
	o := &Order{}
	if err := json.Unmarshal(kv.Value, o); err != nil {
		return nil, 0, internal("decode", err)
	}
	return o, kv.Version, nil
}

// GetOrder returns one of the caller's project's orders. Another project's
// order is forbidden, as a secret would be.
func (s *Service) GetOrder(ctx context.Context, who Identity, id string) (*Order, error) {
	if err := who.Validate(); err != nil {
		return nil, err
	}
	o, _, err := s.loadOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.policy.check(OrderRead, who, o.target(), "order", id); err != nil {
		return nil, err
	}
	return o, nil
}

// OrderQuery pages a project's orders; Types filters them (nil: all).
type OrderQuery struct {
	Types         []OrderType
	Offset, Limit int
}

// ListOrders returns one page of the project's orders, oldest first, and
// how many match.
func (s *Service) ListOrders(ctx context.Context, who Identity, q OrderQuery) ([]*Order, int, error) {
	if err := who.Validate(); err != nil {
		return nil, 0, err
	}
	if err := s.allowProject(OrderList, who); err != nil {
		return nil, 0, err
	}
	kvs, err := s.st.List(ctx, orderPrefix(who.Project), "", 0)
	if err != nil {
		return nil, 0, internal("list", err)
	}
	var out []*Order
	for _, kv := range kvs {
		o := &Order{}
		if err := json.Unmarshal(kv.Value, o); err != nil {
			return nil, 0, internal("decode", err)
		}
		if q.Types != nil && !slices.Contains(q.Types, o.Type) {
			continue
		}
		out = append(out, o)
	}
	slices.SortStableFunc(out, func(a, b *Order) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	total := len(out)
	out = out[min(max(q.Offset, 0), len(out)):]
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, total, nil
}

// DeleteOrder removes an order (its secret stays): a project admin or the
// order's creator may, so castellan can clean up with the user's token.
func (s *Service) DeleteOrder(ctx context.Context, who Identity, id string) (err error) {
	ctx = s.begin(ctx, who, "order_delete")
	defer func() { s.recordDetail(ctx, who, "order_delete", "", "order "+id, err) }()
	if err := who.Validate(); err != nil {
		return err
	}
	return s.mutate(ctx, "", Conflict("order %s is being changed concurrently; try again", id), func() (edit, error) {
		o, version, err := s.loadOrder(ctx, id)
		if err != nil {
			return edit{}, err
		}
		if err := s.policy.check(OrderDelete, who, o.target(), "order", id); err != nil {
			return edit{}, err
		}
		e := removal(orderKey(o.Project, id), version, orderPointerKey(id), o.Project, usage{qOrders: 1})
		e.id, e.detail = o.SecretID, "order "+id+" (its secret stays)"
		return e, nil
	})
}
